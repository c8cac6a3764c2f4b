/* Console helpers shared by the multiboot test kernels (.include "mb_lib.S"): COM1 output at
 * port 0x3f8, which needs no set-up on vireo and QEMU (the UART sends what THR is given). */
    .set COM1, 0x3f8
/* fwcfg_cpus: EAX = the CPU count from fw_cfg: select key 0x05 (FW_CFG_NB_CPUS) with a 16-bit
 * write to 0x510, then read its 2 bytes from 0x511. */
fwcfg_cpus:
    push %edx
    push %ebx
    mov $0x510, %dx
    mov $0x05, %ax
    out %ax, %dx
    mov $0x511, %dx
    xor %eax, %eax
    inb %dx, %al
    mov %eax, %ebx
    inb %dx, %al
    shl $8, %eax
    or %ebx, %eax
    pop %ebx
    pop %edx
    ret
/* putc: AL to COM1. */
putc:
    push %edx
    mov $COM1, %dx
    out %al, %dx
    pop %edx
    ret
/* puts: the NUL-terminated string at EDI. */
puts:
    push %eax
1:  movb (%edi), %al
    test %al, %al
    jz 2f
    call putc
    inc %edi
    jmp 1b
2:  pop %eax
    ret
newline:
    push %eax
    mov $'\n', %al
    call putc
    pop %eax
    ret
/* puthex: EAX as 8 hex digits. */
puthex:
    push %ecx
    push %ebx
    mov %eax, %ebx
    mov $8, %ecx
1:  rol $4, %ebx
    mov %ebx, %eax
    and $0xf, %eax
    movb hexdigits(%eax), %al
    call putc
    loop 1b
    pop %ebx
    pop %ecx
    ret

hexdigits: .ascii "0123456789abcdef"
