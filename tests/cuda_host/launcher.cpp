// The C entry points ctypes calls: launch a registered kernel by name with a cuLaunchKernel-style
// argument array, and describe what is registered.  The kernels themselves are compiled in the
// generated translation units (build/src/entries_*.cpp) and register through ACT_ENTRY_HOOK.
#include "cuda_host_shim.h"

#include <cstring>
#include <string>

#if defined(__x86_64__)
// act_host_switch(save_sp, load_sp): push the callee-saved registers, store the stack pointer in
// *save_sp, continue on the stack load_sp (see act_host::start_context for a fresh one).
asm(R"(
    .text
    .globl act_host_switch
    .type act_host_switch, @function
act_host_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size act_host_switch, .-act_host_switch
    .section .note.GNU-stack, "", @progbits
    .text
)");
#endif

namespace {
std::string last_error;
std::string listing;

const act_host::Entry* find(const char* name) {
  for (const auto& e : act_host::registry())
    if (std::strcmp(e.name, name) == 0) return &e;
  return nullptr;
}
}  // namespace

extern "C" {

// 0 on success; -1 for an unknown kernel, -2 for a failed launch (act_host_error() says why).
int act_host_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                    unsigned long long shared_bytes, void** args) {
  const act_host::Entry* e = find(name);
  if (e == nullptr) {
    last_error = std::string("no kernel named ") + name;
    return -1;
  }
  last_error = e->launch(e->kernel, dim3{gx, gy, gz}, dim3{bx, by, bz}, shared_bytes, args);
  return last_error.empty() ? 0 : -2;
}

const char* act_host_error() { return last_error.c_str(); }

// The parameter type codes of a kernel (see act_host::type_code), or null if unknown.
const char* act_host_signature(const char* name) {
  const act_host::Entry* e = find(name);
  return e == nullptr ? nullptr : e->signature.c_str();
}

// Every registered kernel name, one per line.
const char* act_host_entries() {
  listing.clear();
  for (const auto& e : act_host::registry()) (listing += e.name) += '\n';
  return listing.c_str();
}
}
