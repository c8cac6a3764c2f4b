/* A multiboot (v1) test kernel for the CPU's protection machinery: it enters long mode itself
 * (PAE paging, EFER.LME, a 64-bit GDT, IDT and TSS), then checks page faults, privilege changes
 * through interrupts, SYSCALL/SYSRET and a privileged instruction in ring 3. It says what it saw
 * on COM1 and ends with its verdict on the debug-exit port 0xf4: 0 when every check passed
 * (exit status 1), else the number of the first that failed. The runner expects the same lines
 * from vireo and from QEMU's -kernel.
 *
 *   mb: cpu long mode ok
 *   mb: pf read not-present cr2=40000000 err=00000000      (else verdict 2)
 *   mb: pf write read-only cr2=003ff008 err=00000003       CR0.WP=1 (else 3)
 *   mb: int 0x80 from ring 3 cs=00000023 on the rsp0 stack (else 4)
 *   mb: pf user on supervisor page cr2=003fe010 err=00000005 (else 5)
 *   mb: syscall from ring 3, rcx=user rip, sysret ok       (else 6)
 *   mb: gp on hlt in ring 3 err=00000000                   (else 7)
 *   mb: back in ring 0
 *
 * Any other exception ends with verdict 9 after "mb: unexpected vector=<hex>".
 *
 * Hardware facts used (SDM Vol. 3): long-mode entry §9.8.5 (CR4.PAE, CR3, EFER.LME, CR0.PG);
 * 4-level paging with 2 MiB pages (PS) and one 4 KiB table, U/S and R/W bits, CR0.WP §4.6;
 * the #PF error code P=1, W=2, U=4 and CR2 §4.7; 64-bit IDT gates and the TSS's RSP0 for a
 * privilege change §6.14.4, §7.7; SYSCALL/SYSRET with STAR/LSTAR/FMASK (Vol. 2, SYSCALL):
 * SYSRET loads CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8, with RPL 3.
 */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003
    .set COM1, 0x3f8
    .set UNMAPPED, 0x40000000       /* past the 1 GiB identity map */
    .set RO_PAGE, 0x3ff000          /* read-only 4 KiB page */
    .set SUP_PAGE, 0x3fe000         /* supervisor-only 4 KiB page */
    .set KCODE, 0x08
    .set KDATA, 0x10
    .set UDATA, 0x18                /* STAR[63:48] = 0x10: SS = 0x18|3, CS = 0x20|3 */
    .set UCODE, 0x20
    .set TSSSEL, 0x28

    .code32
    .section .text
    .globl _start
_start:
    jmp entry32
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

entry32:
    mov $kstack_top, %esp
    cmp $0x2BADB002, %eax
    je 1f
    mov $2, %eax
    mov $0xf4, %dx
    out %eax, %dx
    hlt
1:  /* PML4[0] -> PDPT; PDPT[0] -> PD; PD[i] = 2 MiB pages, user, writable, for the first GiB,
     * except PD[1] (2-4 MiB), which points at a 4 KiB table. */
    mov $pdpt, %eax
    or $0x7, %eax
    mov %eax, pml4
    mov $pd, %eax
    or $0x7, %eax
    mov %eax, pdpt
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x87, %eax                  /* P, RW, US, PS */
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 2b
    mov $pt, %eax
    or $0x7, %eax
    mov %eax, pd + 8
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $12, %eax
    add $0x200000, %eax
    or $0x7, %eax                   /* P, RW, US */
    mov %eax, pt(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 2b
    andl $~0x2, pt + 8 * 511        /* RO_PAGE: read-only */
    andl $~0x4, pt + 8 * 510        /* SUP_PAGE: supervisor only */
    /* Long mode: PAE, CR3, EFER.LME and SCE, then paging with WP. */
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x101, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax            /* PG, WP, PE */
    mov %eax, %cr0
    lgdt gdt_desc
    ljmp $KCODE, $entry64

    .code64
entry64:
    mov $KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $kstack_top, %esp
    /* The TSS descriptor's base, and RSP0. */
    mov $tss, %eax
    mov %ax, gdt + TSSSEL + 2
    shr $16, %eax
    mov %al, gdt + TSSSEL + 4
    mov %ah, gdt + TSSSEL + 7
    movl $rsp0_top, tss + 4
    mov $TSSSEL, %ax
    ltr %ax
    call build_idt
    lidt idt_desc
    lea s_long(%rip), %rsi
    call puts

    /* 1. A read of an unmapped address: #PF, error code 0, CR2 = the address. */
    movl $1f, pf_resume
    mov UNMAPPED, %rax
    jmp 9f                          /* no fault: fail */
1:  mov last_cr2, %rax
    cmp $UNMAPPED, %rax
    jne 9f
    cmpl $0, last_err
    jne 9f
    lea s_pf1(%rip), %rsi
    call puts
    call print_pf
    jmp 2f
9:  mov $2, %eax
    jmp verdict

2:  /* 2. A supervisor write to a read-only page with CR0.WP: error code P|W. */
    movl $1f, pf_resume
    movq $1, RO_PAGE + 8
    jmp 9f
1:  cmpq $RO_PAGE + 8, last_cr2
    jne 9f
    cmpl $3, last_err
    jne 9f
    lea s_pf2(%rip), %rsi
    call puts
    call print_pf
    jmp 2f
9:  mov $3, %eax
    jmp verdict

2:  /* 3-6: ring 3, through IRETQ. SYSCALL: STAR, LSTAR, FMASK (IF, TF, DF cleared). */
    mov $0xC0000081, %ecx           /* STAR */
    xor %eax, %eax
    mov $((0x10 << 16) | KCODE), %edx
    wrmsr
    mov $0xC0000082, %ecx           /* LSTAR */
    mov $syscall_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $0xC0000084, %ecx           /* FMASK */
    mov $0x700, %eax
    xor %edx, %edx
    wrmsr
    mov %rsp, kernel_rsp
    pushq $(UDATA | 3)
    pushq $ustack_top
    pushq $0x2
    pushq $(UCODE | 3)
    pushq $user_code
    iretq

/* Ring 3. */
user_code:
    int $0x80                       /* 3: checked by int80_entry */
    movl $1f, pf_resume             /* user mode may write it: the page is user, writable */
    mov SUP_PAGE + 0x10, %rax       /* 4: #PF P|U */
    int $0x81                       /* no fault: report failure 5 */
1:  mov $0x1234, %rbx
    syscall                         /* 5: checked by syscall_entry */
    cmp $0x1234, %rbx
    jne 2f
    hlt                             /* 6: #GP(0) in ring 3; the handler goes to user_done */
2:  int $0x81
user_done:
    int $0x81                       /* back to ring 0 for good */

/* Back in ring 0 for good (from int 0x81): the verdict so far decides. */
kernel_after_user:
    mov kernel_rsp, %rsp
    mov user_verdict, %eax
    test %eax, %eax
    jnz verdict
    lea s_back(%rip), %rsi
    call puts
    xor %eax, %eax
verdict:
    mov $0xf4, %dx
    out %eax, %dx
    cli
7:  hlt
    jmp 7b

/* --- handlers --- */

int80_entry:                        /* frame: RIP, CS, RFLAGS, RSP, SS */
    cmpq $(UCODE | 3), 8(%rsp)
    jne 1f
    mov %rsp, %rax                  /* on the RSP0 stack? */
    cmp $rsp0_top, %rax
    ja 1f
    cmp $rsp0_top - 4096, %rax
    jb 1f
    push %rsi
    lea s_int80(%rip), %rsi
    call puts
    pop %rsi
    iretq
1:  movl $4, user_verdict
    jmp kernel_after_user

int81_entry:
    cmpl $0, user_verdict
    jne kernel_after_user
    mov pf_phase, %eax              /* which user check is still owed */
    cmp $3, %eax
    jae kernel_after_user
    add $5, %eax                    /* 0: the #PF (5), 1: the syscall (6), 2: the #GP (7) */
    mov %eax, user_verdict
    jmp kernel_after_user

syscall_entry:                      /* RCX = the user RIP after SYSCALL, R11 = RFLAGS */
    lea user_code(%rip), %rax
    cmp %rax, %rcx
    jb 1f
    lea user_done(%rip), %rax
    cmp %rax, %rcx
    ja 1f
    mov %cs, %ax
    cmp $KCODE, %ax
    jne 1f
    push %rsi                       /* on the user stack: SYSCALL does not switch stacks */
    lea s_syscall(%rip), %rsi
    call puts
    pop %rsi
    movl $2, pf_phase
    sysretq
1:  movl $6, user_verdict
    jmp kernel_after_user

pf_entry:                           /* frame: error code, RIP, CS, RFLAGS, RSP, SS */
    push %rax
    mov %cr2, %rax
    mov %rax, last_cr2
    mov 8(%rsp), %rax
    mov %eax, last_err
    mov pf_resume, %eax
    mov %rax, 16(%rsp)              /* resume there */
    pop %rax
    add $8, %rsp                    /* the error code */
    cmpq $(UCODE | 3), 8(%rsp)
    jne 1f
    /* From ring 3: the supervisor-page check. */
    cmpq $SUP_PAGE + 0x10, last_cr2
    jne 2f
    cmpl $5, last_err
    jne 2f
    push %rsi
    lea s_pf3(%rip), %rsi
    call puts
    call print_pf
    pop %rsi
    movl $1, pf_phase
1:  iretq
2:  movl $5, user_verdict
    jmp kernel_after_user

gp_entry:                           /* #GP: expected only for HLT in ring 3 */
    cmpq $(UCODE | 3), 16(%rsp)
    jne unexpected_gp
    cmpq $0, (%rsp)
    jne unexpected_gp
    cmpl $2, pf_phase
    jne unexpected_gp
    lea s_gp(%rip), %rsi
    call puts
    movl $3, pf_phase
    add $8, %rsp
    movq $user_done, (%rsp)
    iretq
unexpected_gp:
    mov $13, %ebx
    jmp unexpected_common

/* Every other vector: "mb: unexpected vector=N", verdict 9. */
    .set VEC, 0
    .altmacro
    .macro stub n
    stub_\n:
    mov $\n, %ebx
    jmp unexpected_common
    .endm
    .rept 32
    stub %VEC
    .set VEC, VEC + 1
    .endr
unexpected_common:
    lea s_unexpected(%rip), %rsi
    call puts
    mov %ebx, %eax
    call puthex
    call newline
    mov $9, %eax
    jmp verdict

/* build_idt: vectors 0-31 to their stubs, 13 and 14 to their handlers, 0x80 and 0x81 to
 * DPL 3 gates; 64-bit interrupt gates (type 0xE), selector KCODE. */
build_idt:
    xor %ecx, %ecx
1:  mov stub_table(,%ecx,4), %eax
    mov $0x8e, %edx
    call set_gate
    inc %ecx
    cmp $32, %ecx
    jne 1b
    mov $13, %ecx
    mov $gp_entry, %eax
    mov $0x8e, %edx
    call set_gate
    mov $14, %ecx
    mov $pf_entry, %eax
    call set_gate
    mov $0x80, %ecx
    mov $int80_entry, %eax
    mov $0xee, %edx
    call set_gate
    mov $0x81, %ecx
    mov $int81_entry, %eax
    call set_gate
    ret
/* set_gate: vector ECX -> handler EAX, type/attributes DL. */
set_gate:
    push %rbx
    mov %ecx, %ebx
    shl $4, %ebx
    add $idt, %ebx
    mov %ax, (%rbx)
    movw $KCODE, 2(%rbx)
    movb $0, 4(%rbx)
    mov %dl, 5(%rbx)
    push %rax
    shr $16, %eax
    mov %ax, 6(%rbx)
    pop %rax
    movl $0, 8(%rbx)
    movl $0, 12(%rbx)
    pop %rbx
    ret

/* print_pf: " cr2=<last_cr2 low 32> err=<last_err>\n". */
print_pf:
    push %rsi
    lea s_cr2(%rip), %rsi
    call puts
    mov last_cr2, %eax
    call puthex
    lea s_err(%rip), %rsi
    call puts
    mov last_err, %eax
    call puthex
    call newline
    pop %rsi
    ret

/* 64-bit console helpers (mb_lib.S's are 32-bit code). */
putc:                               /* AL */
    push %rdx
    mov $COM1, %dx
    out %al, %dx
    pop %rdx
    ret
puts:                               /* NUL-terminated string at RSI */
    push %rax
    push %rsi
1:  movb (%rsi), %al
    test %al, %al
    jz 2f
    call putc
    inc %rsi
    jmp 1b
2:  pop %rsi
    pop %rax
    ret
newline:
    push %rax
    mov $'\n', %al
    call putc
    pop %rax
    ret
puthex:                             /* EAX as 8 hex digits */
    push %rdx
    push %rcx
    push %rbx
    push %rax
    mov %eax, %ebx
    mov $8, %ecx
1:  rol $4, %ebx
    mov %ebx, %eax
    and $0xf, %eax
    lea hexdigits(%rip), %rdx
    movb (%rdx,%rax), %al
    call putc
    loop 1b
    pop %rax
    pop %rbx
    pop %rcx
    pop %rdx
    ret

    .section .data
hexdigits: .ascii "0123456789abcdef"
s_long: .asciz "mb: cpu long mode ok\n"
s_pf1: .asciz "mb: pf read not-present"
s_pf2: .asciz "mb: pf write read-only"
s_pf3: .asciz "mb: pf user on supervisor page"
s_cr2: .asciz " cr2="
s_err: .asciz " err="
s_int80: .asciz "mb: int 0x80 from ring 3 cs=00000023 on the rsp0 stack\n"
s_syscall: .asciz "mb: syscall from ring 3, rcx=user rip, sysret ok\n"
s_gp: .asciz "mb: gp on hlt in ring 3 err=00000000\n"
s_back: .asciz "mb: back in ring 0\n"
s_unexpected: .asciz "mb: unexpected vector="
    .align 8
stub_table:
    .set VEC, 0
    .macro stubref n
    .long stub_\n
    .endm
    .rept 32
    stubref %VEC
    .set VEC, VEC + 1
    .endr
    .align 16
gdt:
    .quad 0
    .quad 0x00209a0000000000        /* 0x08 kernel code, 64-bit */
    .quad 0x0000920000000000        /* 0x10 kernel data */
    .quad 0x0000f20000000000        /* 0x18 user data */
    .quad 0x0020fa0000000000        /* 0x20 user code, 64-bit */
    .quad 0x0000890000000067        /* 0x28 TSS (available), limit 103; base filled in */
    .quad 0
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
idt_desc:
    .word 256 * 16 - 1
    .long idt, 0
tss:
    .long 0
    .long 0, 0                      /* RSP0 (filled in) */
    .fill 22, 4, 0
    .word 0, 104                    /* no I/O permission bitmap */
pf_resume: .long 0, 0
last_cr2: .quad 0
last_err: .long 0
pf_phase: .long 0
user_verdict: .long 0
kernel_rsp: .quad 0

    .section .bss
    .align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
pt: .skip 4096
idt: .skip 256 * 16
    .align 16
kstack: .skip 4096
kstack_top:
rsp0: .skip 4096
rsp0_top:
ustack: .skip 4096
ustack_top:
