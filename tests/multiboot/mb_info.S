/* A multiboot (v1) test kernel: checks what the loader hands it and says so on COM1, then
 * writes its verdict to the debug-exit port 0xf4 (QEMU's isa-debug-exit): 0 when every check
 * passed, else the number of the first that failed. The runner expects exit status 1 = (0 << 1) | 1
 * and the same console lines from vireo and from QEMU's -kernel.
 *
 *   mb: magic ok                      EAX = 0x2BADB002 (else verdict 2)
 *   mb: flags ok                      info flags have mem (0), cmdline (2), mmap (6) (else 3)
 *   mb: cmdline=<the command line>
 *   mb: mem_upper=<hex KiB>           RAM from 1 MiB, as mem_upper says
 *   mb: mmap ram=<hex KiB>            RAM above 1 MiB, as the memory map says (must agree: else 4)
 *   mb: module=<its first 16 bytes>   or "mb: no module"
 *   mb: cpus=<hex>                    from fw_cfg key 0x05 (FW_CFG_NB_CPUS)
 *
 * Built as an ELF32 (flags bit 16 clear: loaded by its program headers) and, with -defsym
 * AOUT=1, as a flat binary whose header carries the load addresses (the "a.out kludge", bit 16);
 * with -defsym VERDICT=N it reports N after passing every check; with -defsym VIDEO=1 its header
 * asks for a video mode (flags bit 2), which vireo refuses before running anything.
 */
    .set MB_MAGIC, 0x1BADB002
.ifdef AOUT
    .set MB_FLAGS, 0x00010003
.else
.ifdef VIDEO
    .set MB_FLAGS, 0x00000007       /* bit 2: a video mode, which vireo refuses */
.else
    .set MB_FLAGS, 0x00000003
.endif
.endif
    .set LOAD, 0x100000

    .code32
    .section .text
    .globl _start
_start:
    jmp entry
    .align 4
header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
.ifdef AOUT
    .long LOAD + (header - _start)  /* header_addr */
    .long LOAD                      /* load_addr */
    .long LOAD + (data_end - _start)  /* load_end_addr */
    .long LOAD + (bss_end - _start)   /* bss_end_addr */
    .long LOAD + (entry - _start)     /* entry_addr */
.endif

entry:
    mov $stack_top, %esp
    mov %ebx, %esi                  /* the multiboot information, kept in ESI */
    cmp $0x2BADB002, %eax
    je 1f
    mov $2, %eax
    jmp verdict
1:  mov $s_magic, %edi
    call puts
    mov (%esi), %eax
    and $0x45, %eax                 /* bits 0, 2, 6 */
    cmp $0x45, %eax
    je 1f
    mov $3, %eax
    jmp verdict
1:  mov $s_flags, %edi
    call puts
    mov $s_cmdline, %edi
    call puts
    mov 16(%esi), %edi
    call puts
    call newline
    mov $s_mem_upper, %edi
    call puts
    mov 8(%esi), %eax
    mov %eax, %ebp                  /* mem_upper, for the memory map check */
    call puthex
    call newline
    /* Sum the memory map's RAM (type 1) above 1 MiB, in KiB, up to the first hole. */
    mov 48(%esi), %ebx              /* mmap_addr */
    mov 44(%esi), %ecx              /* mmap_length */
    add %ebx, %ecx                  /* end */
    xor %edx, %edx                  /* KiB found */
2:  cmp %ecx, %ebx
    jae 3f
    cmpl $1, 20(%ebx)               /* type */
    jne 4f
    cmpl $0, 8(%ebx)                /* base_addr high */
    jne 4f
    cmpl $0x100000, 4(%ebx)         /* base_addr low: the entry that starts at 1 MiB */
    jne 4f
    mov 12(%ebx), %eax              /* length low */
    shr $10, %eax
    mov %eax, %edx
4:  mov (%ebx), %eax                /* size, not counting itself */
    lea 4(%ebx,%eax), %ebx
    jmp 2b
3:  mov $s_mmap, %edi
    call puts
    mov %edx, %eax
    call puthex
    call newline
    cmp %edx, %ebp
    je 1f
    mov $4, %eax
    jmp verdict
1:  cmpl $0, 20(%esi)               /* mods_count */
    jne 1f
    mov $s_nomod, %edi
    call puts
    jmp 5f
1:  mov $s_module, %edi
    call puts
    mov 24(%esi), %ebx              /* mods_addr */
    mov (%ebx), %ebx                /* mod_start */
    mov $16, %ecx
6:  mov (%ebx), %al
    call putc
    inc %ebx
    loop 6b
    call newline
5:  mov $s_cpus, %edi
    call puts
    call fwcfg_cpus
    call puthex
    call newline
.ifdef VERDICT
    mov $VERDICT, %eax              /* a kernel that fails on purpose (the runner's own check) */
.else
    xor %eax, %eax
.endif
verdict:
    mov $0xf4, %dx
    out %eax, %dx
    cli
7:  hlt
    jmp 7b

    .include "mb_lib.S"

s_magic: .asciz "mb: magic ok\n"
s_flags: .asciz "mb: flags ok\n"
s_cmdline: .asciz "mb: cmdline="
s_mem_upper: .asciz "mb: mem_upper="
s_mmap: .asciz "mb: mmap ram="
s_module: .asciz "mb: module="
s_nomod: .asciz "mb: no module\n"
s_cpus: .asciz "mb: cpus="
data_end:
    /* The stack: zeroed memory after the loaded bytes (the ELF's file bytes end here too, the
     * a.out header's load_end_addr says so and bss_end_addr covers it). */
    .align 16
stack: .skip 4096
stack_top:
bss_end:
