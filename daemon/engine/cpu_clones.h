// engine/cpu_clones.h — EDGELLM_CPU_CLONES: one copy of a function per x86-64
// instruction-set level (v4: AVX-512, v3: AVX2, and the baseline), picked
// when the program loads, for loops the compiler vectorizes 4, 8 or 16
// lanes wide. Not under ThreadSanitizer, whose instrumented resolver would
// run before its runtime is up, nor on other compilers and machines.
#ifndef EDGELLM_ENGINE_CPU_CLONES_H_
#define EDGELLM_ENGINE_CPU_CLONES_H_

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define EDGELLM_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EDGELLM_CPU_CLONES
#endif

#endif  // EDGELLM_ENGINE_CPU_CLONES_H_
