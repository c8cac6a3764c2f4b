/* A multiboot (v1) test kernel for the platform: SMP bring-up, the LAPIC timer, the PIT through
 * the IOAPIC, the CMOS RTC. It says what it found on COM1 and ends with its verdict on the
 * debug-exit port 0xf4: 0 when every check passed (exit status 1), else the number of the check
 * that failed. The runner expects the same lines from vireo and from QEMU's -kernel.
 *
 *   mb: platform magic ok
 *   mb: cpus=<hex>                 fw_cfg key 0x05
 *   mb: aps started=<hex>          every AP ran the real-mode trampoline after INIT-SIPI-SIPI
 *                                  (else verdict 3: fewer than cpus-1 within the wait)
 *   mb: lapic timer ticks=00000005 periodic LVT timer, vector 0x40, EOI by the handler
 *   mb: ioapic pins=00000018       IOAPIC version register: 24 redirection entries (else 6)
 *   mb: pit ticks=00000005 ioapic pin=00000002
 *                                  PIT channel 0, mode 2, ISA IRQ 0 = IOAPIC pin 2 (the MADT's
 *                                  interrupt source override, as on every PC), vector 0x41;
 *                                  the pin is the one the ticks came on (pin 0: vector 0x42)
 *   mb: pic ticks=00000005         the same PIT through the 8259 pair (ICW1-4, vector base 0x50,
 *                                  only IR0 unmasked, EOI by OCW2) and the LAPIC's LINT0 in
 *                                  ExtINT mode
 *   mb: rtc bcd ok                 seconds/minutes/hours/day/month/year valid BCD (else 4)
 *   mb: rtc ticks                  the seconds register changes (else 5)
 *
 * An interrupt on any other vector ends with verdict 9. A timer that never fires leaves the
 * kernel in HLT: the runner's time limit catches that.
 *
 * Hardware facts used: INIT/SIPI through the ICR (SDM Vol. 3 §11.6.1, §8.4.4: the AP starts in
 * real mode at CS:IP = VV00:0000 for SIPI vector VV); LVT timer, divide and count registers
 * (§11.5.4); IOAPIC IOREGSEL/IOWIN at +0x00/+0x10, redirection entry 2N at 0x10 + 2N (82093AA
 * datasheet §3.2); 8254 control word 0x34 = counter 0, lobyte/hibyte, mode 2 (8254 datasheet);
 * MC146818 registers 0x00/0x02/0x04/0x07/0x08/0x09 and status B bit 2 (binary mode).
 */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003
    .set LAPIC, 0xFEE00000
    .set IOAPIC, 0xFEC00000
    .set AP_COUNT, 0x7000           /* below 64 KiB: reachable from the real-mode trampoline */
    .set TRAMPOLINE, 0x8000         /* SIPI vector 0x08 */
    .set TIMER_VECTOR, 0x40
    .set PIT_VECTOR, 0x41
    .set PIT0_VECTOR, 0x42
    .set PIC_BASE, 0x50             /* the master 8259's IR0; the slave's at 0x58 */
    .set SPURIOUS_VECTOR, 0xff
    .set TICKS, 5

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

entry:
    mov $stack_top, %esp
    cmp $0x2BADB002, %eax
    je 1f
    mov $2, %eax
    jmp verdict
1:  /* Our own GDT (the loader's CS is flat but its selector and the GDTR are undefined). */
    lgdt gdt_desc
    ljmp $0x08, $1f
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    call build_idt
    lidt idt_desc
    /* The 8259s masked: firmware may have left the PIT's IRQ 0 unmasked on them (SeaBIOS
     * does, under QEMU -kernel), and their vectors are not ours. */
    mov $0xff, %al
    out %al, $0x21
    out %al, $0xa1
    mov $s_magic, %edi
    call puts

    mov $s_cpus, %edi
    call puts
    call fwcfg_cpus
    mov %eax, cpus
    call puthex
    call newline

    /* The LAPIC on: spurious-interrupt vector register, APIC software enable (bit 8). */
    movl $(0x100 | SPURIOUS_VECTOR), LAPIC + 0xf0

    /* SMP: copy the trampoline below 1 MiB, INIT then two SIPIs to all but self. */
    cld
    mov $trampoline, %esi
    mov $TRAMPOLINE, %edi
    mov $(trampoline_end - trampoline), %ecx
    rep movsb
    movl $0, AP_COUNT
    movl $0, LAPIC + 0x310          /* ICR high: destination unused with a shorthand */
    movl $0x000C4500, LAPIC + 0x300 /* all excluding self, assert, INIT */
    call icr_wait
    movl $0x000C4608, LAPIC + 0x300 /* all excluding self, assert, SIPI vector 0x08 */
    call icr_wait
    movl $0x000C4608, LAPIC + 0x300 /* the second SIPI (ignored by an AP that started) */
    call icr_wait
    mov cpus, %ebx
    dec %ebx                        /* APs expected */
    mov $200000000, %ecx            /* bounded wait */
2:  cmp AP_COUNT, %ebx
    je 3f
    pause
    loop 2b
3:  mov $s_aps, %edi
    call puts
    mov AP_COUNT, %eax
    call puthex
    call newline
    cmp AP_COUNT, %ebx
    je 1f
    mov $3, %eax
    jmp verdict

1:  /* LAPIC timer: periodic, divide by 1, 1,000,000 bus clocks (1 ms at KVM's and QEMU's 1 GHz). */
    movl $0xb, LAPIC + 0x3e0
    movl $(TIMER_VECTOR | (1 << 17)), LAPIC + 0x320
    movl $1000000, LAPIC + 0x380
    sti
2:  cmpl $TICKS, lapic_ticks
    jae 3f
    hlt
    jmp 2b
3:  cli
    movl $0x10000, LAPIC + 0x320    /* masked */
    movl $0, LAPIC + 0x380
    mov $s_lapic, %edi
    call puts
    mov lapic_ticks, %eax
    cmp $TICKS, %eax
    jbe 4f
    mov $TICKS, %eax                /* a tick may land between the check and CLI */
4:  call puthex
    call newline

    /* IOAPIC: the version register's maximum redirection entry (bits 16-23) + 1. */
    movl $1, IOAPIC
    mov IOAPIC + 0x10, %eax
    shr $16, %eax
    and $0xff, %eax
    inc %eax
    mov %eax, %ebx
    mov $s_ioapic, %edi
    call puts
    mov %ebx, %eax
    call puthex
    call newline
    cmp $24, %ebx
    je 1f
    mov $6, %eax
    jmp verdict

1:  /* PIT through the IOAPIC: pin 2 -> vector 0x41 and pin 0 -> 0x42, on APIC ID 0 (fixed,
     * physical, edge, active high), counter 0 in mode 2 at 1193 (1 ms at 1.193182 MHz). The
     * MADT's override says pin 2; the line says which pin the ticks came on (vireo on KVM: pin 0,
     * KVM's default routing, a known deviation). */
    movl $0x15, IOAPIC               /* entry 2, high dword: destination */
    movl $0, IOAPIC + 0x10
    movl $0x14, IOAPIC               /* entry 2, low dword */
    movl $PIT_VECTOR, IOAPIC + 0x10
    movl $0x11, IOAPIC               /* entry 0 */
    movl $0, IOAPIC + 0x10
    movl $0x10, IOAPIC
    movl $PIT0_VECTOR, IOAPIC + 0x10
    mov $0x34, %al
    out %al, $0x43
    mov $(1193 & 0xff), %al
    out %al, $0x40
    mov $(1193 >> 8), %al
    out %al, $0x40
    sti
2:  cmpl $TICKS, pit_ticks
    jae 3f
    hlt
    jmp 2b
3:  cli
    movl $0x14, IOAPIC
    movl $(0x10000 | PIT_VECTOR), IOAPIC + 0x10  /* masked */
    movl $0x10, IOAPIC
    movl $(0x10000 | PIT0_VECTOR), IOAPIC + 0x10
    mov $s_pit, %edi
    call puts
    mov pit_ticks, %eax
    cmp $TICKS, %eax
    jbe 4f
    mov $TICKS, %eax
4:  call puthex
    mov $s_pin, %edi
    call puts
    mov pit_pin, %eax
    call puthex
    call newline

    /* The PIT through the 8259 pair: ICW1 (edge, cascade, ICW4), ICW2 (vector bases), ICW3
     * (the slave on IR2), ICW4 (8086 mode); only the master's IR0 unmasked; LINT0 ExtINT. */
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xa0
    mov $PIC_BASE, %al
    out %al, $0x21
    mov $(PIC_BASE + 8), %al
    out %al, $0xa1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xa1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xa1
    mov $0xff, %al
    out %al, $0xa1
    mov $0xfe, %al
    out %al, $0x21
    movl $0x700, LAPIC + 0x350      /* LVT LINT0: ExtINT, unmasked */
    sti
2:  cmpl $TICKS, pic_ticks
    jae 3f
    hlt
    jmp 2b
3:  cli
    mov $0xff, %al
    out %al, $0x21
    movl $0x10700, LAPIC + 0x350    /* masked */
    mov $s_pic, %edi
    call puts
    mov pic_ticks, %eax
    cmp $TICKS, %eax
    jbe 4f
    mov $TICKS, %eax
4:  call puthex
    call newline

    /* RTC: valid BCD in the date and time registers (unless status B says binary). */
    mov $0x0b, %al
    call cmos_read
    test $0x04, %al
    jnz 5f                          /* binary mode: nothing to check digit by digit */
    mov $rtc_limits, %esi
2:  movzbl (%esi), %eax             /* register; 0xff ends the table */
    cmp $0xff, %al
    je 5f
    call cmos_read
    and $0x7f, %al                  /* hours: bit 7 is PM in 12-hour mode */
    mov %al, %ah
    and $0x0f, %ah
    cmp $9, %ah
    ja 6f
    mov %al, %ah
    shr $4, %ah
    cmp $9, %ah
    ja 6f
    cmp 1(%esi), %al                /* at least */
    jb 6f
    cmp 2(%esi), %al                /* at most */
    ja 6f
    add $3, %esi
    jmp 2b
6:  mov $4, %eax
    jmp verdict
5:  mov $s_rtc_bcd, %edi
    call puts
    /* The seconds register changes within a bounded wait (at least a second of polling). */
    xor %al, %al
    call cmos_read
    mov %al, %bl
    mov $400000000, %ecx
2:  xor %al, %al
    call cmos_read
    cmp %al, %bl
    jne 3f
    loop 2b
    mov $5, %eax
    jmp verdict
3:  mov $s_rtc_ticks, %edi
    call puts
    xor %eax, %eax
verdict:
    mov $0xf4, %dx
    out %eax, %dx
    cli
7:  hlt
    jmp 7b

/* cmos_read: register AL of the MC146818 -> AL (NMI left enabled: bit 7 clear). */
cmos_read:
    out %al, $0x70
    in $0x71, %al
    ret

/* icr_wait: until the ICR's delivery status (bit 12) is idle. */
icr_wait:
    testl $0x1000, LAPIC + 0x300
    jz 1f
    pause
    jmp icr_wait
1:  ret

/* build_idt: 256 32-bit interrupt gates (selector 0x08, P, DPL 0, type 0xE) to `unexpected`,
 * but for the timer, the PIT and the spurious vector. */
build_idt:
    mov $idt, %edi
    xor %ecx, %ecx
1:  mov $unexpected, %eax
    cmp $TIMER_VECTOR, %ecx
    jne 2f
    mov $lapic_isr, %eax
2:  cmp $PIT_VECTOR, %ecx
    jne 2f
    mov $pit_isr, %eax
2:  cmp $PIT0_VECTOR, %ecx
    jne 2f
    mov $pit0_isr, %eax
2:  cmp $PIC_BASE, %ecx
    jne 2f
    mov $pic_isr, %eax
2:  cmp $(PIC_BASE + 7), %ecx        /* the 8259's spurious IR7 */
    jne 2f
    mov $spurious_isr, %eax
2:  cmp $SPURIOUS_VECTOR, %ecx
    jne 2f
    mov $spurious_isr, %eax
2:  mov %eax, %edx
    and $0xffff, %eax
    or $0x00080000, %eax
    mov %eax, (%edi)
    and $0xffff0000, %edx
    or $0x8e00, %edx
    mov %edx, 4(%edi)
    add $8, %edi
    inc %ecx
    cmp $256, %ecx
    jne 1b
    ret

lapic_isr:
    incl lapic_ticks
    movl $0, LAPIC + 0xb0           /* EOI */
    iret
pit0_isr:
    movl $0, pit_pin
    incl pit_ticks
    movl $0, LAPIC + 0xb0
    iret
pit_isr:
    movl $2, pit_pin
    incl pit_ticks
    movl $0, LAPIC + 0xb0
    iret
pic_isr:
    incl pic_ticks
    push %eax
    mov $0x20, %al                  /* OCW2: non-specific EOI */
    out %al, $0x20
    pop %eax
    iret
spurious_isr:                       /* no EOI for the spurious vector (SDM Vol. 3 §11.9) */
    iret
unexpected:
    mov $s_unexpected, %edi
    call puts
    mov $9, %eax
    jmp verdict

/* The AP trampoline, copied to TRAMPOLINE: real mode, CS = 0x0800. Counts itself and halts. */
    .code16
trampoline:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lock incl AP_COUNT
1:  hlt
    jmp 1b
trampoline_end:
    .code32

    .include "mb_lib.S"

s_magic: .asciz "mb: platform magic ok\n"
s_cpus: .asciz "mb: cpus="
s_aps: .asciz "mb: aps started="
s_lapic: .asciz "mb: lapic timer ticks="
s_ioapic: .asciz "mb: ioapic pins="
s_pit: .asciz "mb: pit ticks="
s_pin: .asciz " ioapic pin="
s_pic: .asciz "mb: pic ticks="
s_rtc_bcd: .asciz "mb: rtc bcd ok\n"
s_rtc_ticks: .asciz "mb: rtc ticks\n"
s_unexpected: .asciz "mb: unexpected interrupt\n"
/* RTC register, lowest and highest BCD value. */
rtc_limits:
    .byte 0x00, 0x00, 0x59          /* seconds */
    .byte 0x02, 0x00, 0x59          /* minutes */
    .byte 0x04, 0x00, 0x23          /* hours (12-hour mode: 01-12, within this) */
    .byte 0x07, 0x01, 0x31          /* day of month */
    .byte 0x08, 0x01, 0x12          /* month */
    .byte 0x09, 0x00, 0x99          /* year */
    .byte 0xff
    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08: code, flat, 32-bit */
    .quad 0x00cf92000000ffff        /* 0x10: data, flat */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
idt_desc:
    .word 256 * 8 - 1
    .long idt
cpus: .long 0
lapic_ticks: .long 0
pit_ticks: .long 0
pit_pin: .long 0xffffffff
pic_ticks: .long 0
    .align 16
idt: .skip 256 * 8
stack: .skip 4096
stack_top:
