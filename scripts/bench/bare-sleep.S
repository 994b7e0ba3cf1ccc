# bare-sleep: sleeps one second and exits 0, whatever its arguments, with
# nothing before the sleep: no dynamic loader, no C library start-up.
# Workload 2's `sleep 1` spends ~0.8 ms of CPU in glibc's start-up (mostly
# cpuid, which traps on a VM) before it sleeps; with this one the wall time
# of 200 at once is the runner's own fan-out cost.
	.globl _start
	.text
_start:
	lea one_second(%rip), %rdi
	xor %esi, %esi
	mov $35, %eax           # nanosleep(&one_second, NULL)
	syscall
	xor %edi, %edi
	mov $231, %eax          # exit_group(0)
	syscall

	.data
one_second:
	.quad 1, 0
