/* A multiboot (v1) benchmark kernel for bench/soft (tests/bench/soft-bench.sh): runs one loop
 * ITER times in 32-bit protected mode (paging off, interrupts off) and ends with verdict 0 on the
 * debug-exit port 0xf4 (exit status 1). The bench runs it with two ITER values and divides the
 * extra instructions by the extra time, so start-up and firmware costs cancel out.
 *
 *   -defsym KIND=1  integer: 6 instructions an iteration (ADD, XOR, ROL, SUB, DEC, JNZ)
 *   -defsym KIND=2  memory: 7 instructions an iteration (a load and a store in a 64 KiB
 *                   buffer, ADD, INC, AND, DEC, JNZ)
 *   -defsym ITER=N  iterations (N < 2^32)
 */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003

    .code32
    .section .text
    .globl _start
_start:
    jmp entry
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

entry:
    mov $stack_top, %esp
    mov $ITER, %ecx
    xor %eax, %eax
    mov $0x12345678, %ebx
    xor %edx, %edx
.if KIND == 1
1:  add %ebx, %eax
    xor %eax, %edx
    rol $3, %ebx
    sub %edx, %ebx
    dec %ecx
    jnz 1b
.else
    mov $buffer, %esi
    xor %edi, %edi
1:  mov (%esi,%edi,4), %eax
    add %eax, %ebx
    mov %ebx, 4(%esi,%edi,4)
    inc %edi
    and $0x3fff, %edi
    dec %ecx
    jnz 1b
.endif
    xor %eax, %eax
    mov $0xf4, %dx
    out %eax, %dx
    cli
2:  hlt
    jmp 2b

    .align 16
stack: .skip 1024
stack_top:
    /* The buffer on pages of its own: a store to a page holding decoded code costs a re-decode
     * on the soft CPU (its self-modifying-code check is per page), which is not what this
     * loop measures. */
    .balign 4096
buffer: .skip 65536 + 16
