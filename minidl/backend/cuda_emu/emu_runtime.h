// emu_runtime.h — the scheduler of the CPU emulation of CUDA.
//
// One kernel launch runs its blocks one after another on the calling OS thread. Inside a
// block every CUDA thread is a user-space fiber with its own small stack. A fiber
// runs without interruption until it reaches a synchronisation point (__syncthreads or a
// warp intrinsic) or returns; only there does the scheduler switch to the next fiber. So:
//
//   * code between two barriers runs for thread 0 completely before thread 1 starts it
//     (forward order) or for the last thread first (reverse order). A kernel that forgot a
//     barrier reads shared memory that its neighbour has not written yet in one of the two
//     orders; dynamic shared memory is filled with 0xFF bytes (a NaN pattern) before each
//     block so that such a read shows up as NaN instead of a plausible stale value.
//   * a barrier that not every thread reaches can never release. Instead of hanging, the
//     scheduler notices that no fiber can run and reports who waits where (file:line).
//   * warp shuffles exchange values through a per-warp mailbox: each lane posts its value
//     and waits; the last lane of the mask to arrive computes every lane's result.
//
// Everything here is `static` (internal linkage): each kernel .so has its own copy.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include <sys/mman.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define MINIDL_EMU_ASAN 1
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                               size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                size_t* size_old);
#endif

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
        : x(x_), y(y_), z(z_) {}
};

namespace emu {

enum class Wait : int { Runnable, Barrier, Warp, Done };
enum class WarpOp : int { Sync, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All };

static const char* warp_op_name(WarpOp op) {
    switch (op) {
        case WarpOp::Sync: return "__syncwarp";
        case WarpOp::ShflIdx: return "__shfl_sync";
        case WarpOp::ShflUp: return "__shfl_up_sync";
        case WarpOp::ShflDown: return "__shfl_down_sync";
        case WarpOp::ShflXor: return "__shfl_xor_sync";
        case WarpOp::Ballot: return "__ballot_sync";
        case WarpOp::Any: return "__any_sync";
        case WarpOp::All: return "__all_sync";
    }
    return "?";
}

struct Site {
    const char* file;
    int line;
};

// ---- the context switch ----
// On x86-64 (without ASan) a fiber switch is a hand-written function: push the registers the
// SysV ABI says a callee must preserve, swap stack pointers, pop. ucontext's swapcontext also
// saves the signal mask with a system call, which made switching ~10x slower. ASan builds
// and other CPUs use ucontext.
#if defined(__x86_64__) && !defined(MINIDL_EMU_ASAN)
#define MINIDL_EMU_FAST_SWITCH 1
struct Context {
    void* sp;
};
extern "C" void minidl_emu_switch(Context* save, const Context* load);
asm(R"(
    .text
    .p2align 4
    .type minidl_emu_switch, @function
minidl_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size minidl_emu_switch, .-minidl_emu_switch
)");
static void switch_context(Context* save, const Context* load) { minidl_emu_switch(save, load); }
static void jump_context(const Context* load) {
    Context discarded;
    minidl_emu_switch(&discarded, load);
}
// A new fiber's stack looks as if minidl_emu_switch had been called from `entry`'s caller:
// [MXCSR, FPU control word] [6 saved registers] [return address = entry] [fake return slot].
static void make_context(Context* ctx, char* stack, size_t size, void (*entry)()) {
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
    uint64_t* sp = reinterpret_cast<uint64_t*>(top);
    *--sp = 0;                                      // entry never returns
    *--sp = reinterpret_cast<uint64_t>(entry);      // popped by `ret`
    for (int i = 0; i < 6; ++i) *--sp = 0;          // rbp rbx r12-r15
    *--sp = 0x1F80ull | (0x037Full << 32);          // default MXCSR and x87 control word
    ctx->sp = sp;
}
#else
struct Context {
    ucontext_t uc;
};
static void switch_context(Context* save, const Context* load) { swapcontext(&save->uc, &load->uc); }
static void jump_context(const Context* load) { setcontext(&load->uc); }
static void make_context(Context* ctx, char* stack, size_t size, void (*entry)()) {
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = stack;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = nullptr;
    makecontext(&ctx->uc, entry, 0);
}
#endif

struct Fiber {
    Context context;
    char* stack;
    uint3 idx;          // threadIdx
    unsigned linear;    // x + y*bx + z*bx*by: the lane is linear % 32, the warp linear / 32
    Wait wait;
    Site site;          // where it waits (valid when wait is Barrier or Warp)
    WarpOp op;
};

// Mailbox of one warp. A lane's slots are only rewritten when that lane arrives again,
// which it cannot do before it has read its result: so results never get overwritten early.
struct WarpMailbox {
    unsigned arrived;
    unsigned mask[32];
    int arg[32];
    int width[32];
    uint64_t in[32];
    uint64_t out[32];
};

constexpr size_t kStackBytes =
#ifdef MINIDL_EMU_ASAN
    512 * 1024;  // ASan's redzones make frames several times larger
#else
    128 * 1024;
#endif

struct State {
    uint3 grid{1, 1, 1}, block{1, 1, 1}, block_idx{0, 0, 0};
    unsigned threads_per_block = 0;
    bool reverse = false;
    unsigned char* dyn_smem = nullptr;
    size_t dyn_smem_bytes = 0;
    std::vector<Fiber> fibers;
    std::vector<WarpMailbox> warps;
    std::vector<char*> stacks;  // kept between launches; a guard page sits below each
    unsigned barrier_arrived = 0;
    void (*body)(void*) = nullptr;
    void* body_arg = nullptr;
    Context scheduler;
    bool failed = false;
    std::string error;
    const void* main_stack_bottom = nullptr;
    size_t main_stack_size = 0;
};

static State g;
static Fiber* g_current = nullptr;

// ---- fiber switching (with AddressSanitizer annotations so it follows the stacks) ----

static void asan_start_switch(void** fake, const void* bottom, size_t size) {
#ifdef MINIDL_EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

static void asan_finish_switch(void* fake, const void** bottom_old, size_t* size_old) {
#ifdef MINIDL_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
    (void)fake, (void)bottom_old, (void)size_old;
#endif
}

// Called by a fiber: hand control back to the scheduler; returns when resumed.
static void yield_to_scheduler() {
    Fiber* self = g_current;
    void* fake = nullptr;
    asan_start_switch(&fake, g.main_stack_bottom, g.main_stack_size);
    switch_context(&self->context, &g.scheduler);
    asan_finish_switch(fake, nullptr, nullptr);
    // Other fibers wrote shared memory meanwhile: forbid the compiler to reuse loaded values.
    asm volatile("" ::: "memory");
}

// Called by a fiber that will never run again (it returned, or it found an error).
[[noreturn]] static void leave_fiber_forever() {
    asan_start_switch(nullptr, g.main_stack_bottom, g.main_stack_size);
    jump_context(&g.scheduler);
    __builtin_unreachable();
}

static std::string thread_name(const Fiber& f) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "thread (%u,%u,%u)", f.idx.x, f.idx.y, f.idx.z);
    return buf;
}

static std::string block_name() {
    char buf[64];
    std::snprintf(buf, sizeof buf, "block (%u,%u,%u)", g.block_idx.x, g.block_idx.y,
                  g.block_idx.z);
    return buf;
}

static std::string site_name(Site s) { return std::string(s.file) + ":" + std::to_string(s.line); }

// Record an error for the host and abandon the fiber. Never returns.
[[noreturn]] static void fail(const std::string& message) {
    g.failed = true;
    g.error = "CUDA emulator: " + message;
    leave_fiber_forever();
}

static void fiber_main() {
    asan_finish_switch(nullptr, &g.main_stack_bottom, &g.main_stack_size);
    g.body(g.body_arg);
    g_current->wait = Wait::Done;
    leave_fiber_forever();
}

static char* stack_for(unsigned i) {
    while (g.stacks.size() <= i) {
        const size_t page = 4096;
        void* mem = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) return nullptr;
        mprotect(mem, page, PROT_NONE);  // stack overflow faults instead of corrupting
        g.stacks.push_back(static_cast<char*>(mem) + page);
    }
    return g.stacks[i];
}

// ---- deadlock diagnosis: nobody can run but not everybody has returned ----

static std::string describe_waiters() {
    // Group consecutive threads that wait on the same thing, e.g. "threads 0-15 returned".
    std::string out;
    size_t n = g.fibers.size(), i = 0;
    while (i < n) {
        const Fiber& a = g.fibers[i];
        size_t j = i + 1;
        auto same = [&](const Fiber& b) {
            if (b.wait != a.wait) return false;
            if (a.wait == Wait::Done) return true;
            return b.site.line == a.site.line && std::strcmp(b.site.file, a.site.file) == 0 &&
                   (a.wait != Wait::Warp || b.op == a.op);
        };
        while (j < n && same(g.fibers[j])) ++j;
        char range[64];
        std::snprintf(range, sizeof range, "threads %zu-%zu", i, j - 1);
        out += "\n    ";
        out += range;
        if (a.wait == Wait::Done) out += " returned";
        else if (a.wait == Wait::Barrier) out += " wait at __syncthreads (" + site_name(a.site) + ")";
        else if (a.wait == Wait::Warp)
            out += std::string(" wait at ") + warp_op_name(a.op) + " (" + site_name(a.site) + ")";
        else out += " are runnable";
        i = j;
    }
    return out;
}

static void report_deadlock() {
    g.failed = true;
    g.error = "CUDA emulator: deadlock in " + block_name() +
              ": no thread can continue (a __syncthreads not reached by every thread of the "
              "block, e.g. after an early return, or a warp intrinsic whose mask names lanes "
              "that never arrive). Threads are numbered x + y*blockDim.x + ..." +
              describe_waiters();
}

// ---- one block ----

static bool run_block() {
    const unsigned n = g.threads_per_block;
    g.barrier_arrived = 0;
    for (auto& w : g.warps) w.arrived = 0;
    if (g.dyn_smem_bytes) std::memset(g.dyn_smem, 0xFF, g.dyn_smem_bytes);
    for (unsigned i = 0; i < n; ++i) {
        Fiber& f = g.fibers[i];
        f.wait = Wait::Runnable;
        f.stack = stack_for(i);
        if (!f.stack) {
            g.failed = true;
            g.error = "CUDA emulator: out of memory for fiber stacks";
            return false;
        }
        make_context(&f.context, f.stack, kStackBytes, fiber_main);
    }
    for (;;) {
        bool ran = false, all_done = true;
        for (unsigned k = 0; k < n; ++k) {
            Fiber& f = g.fibers[g.reverse ? n - 1 - k : k];
            if (f.wait != Wait::Runnable) continue;
            ran = true;
            g_current = &f;
            void* fake = nullptr;
            asan_start_switch(&fake, f.stack, kStackBytes);
            switch_context(&g.scheduler, &f.context);
            asan_finish_switch(fake, nullptr, nullptr);
            if (g.failed) return false;
        }
        for (const Fiber& f : g.fibers)
            if (f.wait != Wait::Done) all_done = false;
        if (all_done) return true;
        if (!ran) {
            report_deadlock();
            return false;
        }
    }
}

// Run `body(arg)` as every thread of every block. Returns 0, or 1 with g.error set.
static int launch(const unsigned dims[6], size_t dyn_smem_bytes, int reverse,
                  void (*body)(void*), void* arg) {
    g.grid = {dims[0], dims[1], dims[2]};
    g.block = {dims[3], dims[4], dims[5]};
    g.threads_per_block = dims[3] * dims[4] * dims[5];
    g.reverse = reverse != 0;
    g.body = body;
    g.body_arg = arg;
    g.failed = false;
    g.error.clear();
    if (g.threads_per_block == 0 || g.threads_per_block > 1024 || g.grid.x == 0 ||
        g.grid.y == 0 || g.grid.z == 0) {
        g.error = "CUDA emulator: invalid launch configuration";
        return 1;
    }
    // Exact size (no rounding up): AddressSanitizer then flags the first byte past the end.
    g.dyn_smem_bytes = dyn_smem_bytes;
    g.dyn_smem = dyn_smem_bytes ? new unsigned char[dyn_smem_bytes] : nullptr;
    g.fibers.assign(g.threads_per_block, Fiber{});
    g.warps.assign((g.threads_per_block + 31) / 32, WarpMailbox{});
    for (unsigned i = 0; i < g.threads_per_block; ++i) {
        Fiber& f = g.fibers[i];
        f.linear = i;
        f.idx = {i % g.block.x, (i / g.block.x) % g.block.y, i / (g.block.x * g.block.y)};
    }
    const unsigned long long blocks = 1ull * g.grid.x * g.grid.y * g.grid.z;
    bool ok = true;
    for (unsigned long long k = 0; k < blocks && ok; ++k) {
        unsigned long long b = g.reverse ? blocks - 1 - k : k;
        g.block_idx = {unsigned(b % g.grid.x), unsigned((b / g.grid.x) % g.grid.y),
                       unsigned(b / (1ull * g.grid.x * g.grid.y))};
        ok = run_block();
    }
    delete[] g.dyn_smem;
    g.dyn_smem = nullptr;
    return ok ? 0 : 1;
}

// ---- __syncthreads ----

static void block_barrier(Site site) {
    Fiber* self = g_current;
    self->wait = Wait::Barrier;
    self->site = site;
    if (++g.barrier_arrived == g.threads_per_block) {
        // Everybody arrived: it must be at the same barrier, or the code diverged.
        for (const Fiber& f : g.fibers) {
            if (f.site.line != site.line || std::strcmp(f.site.file, site.file) != 0)
                fail("divergent __syncthreads in " + block_name() + ": " + thread_name(*self) +
                     " is at " + site_name(site) + " but " + thread_name(f) + " is at " +
                     site_name(f.site) + "; every thread must reach the same barrier");
        }
        for (Fiber& f : g.fibers) f.wait = Wait::Runnable;
        g.barrier_arrived = 0;
    }
    yield_to_scheduler();
}

// ---- warp intrinsics ----

static unsigned lanes_present(unsigned warp) {
    unsigned first = warp * 32, n = g.threads_per_block - first;
    return n >= 32 ? 0xffffffffu : ((1u << n) - 1u);
}

static int source_lane(WarpOp op, int lane, int arg, int width) {
    const int segment = lane & ~(width - 1), pos = lane & (width - 1);
    switch (op) {
        case WarpOp::ShflIdx: return segment + (arg & (width - 1));
        case WarpOp::ShflUp: return pos >= arg ? lane - arg : lane;
        case WarpOp::ShflDown: return pos + arg < width ? lane + arg : lane;
        case WarpOp::ShflXor: {
            int src = lane ^ arg;  // a later segment is out of reach: own value
            return (src & ~(width - 1)) > segment ? lane : src;
        }
        default: return lane;
    }
}

static std::string hex(unsigned mask) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", mask);
    return buf;
}

static uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                              Site site) {
    Fiber* self = g_current;
    const unsigned lane = self->linear & 31u, warp = self->linear >> 5;
    WarpMailbox& box = g.warps[warp];
    const char* name = warp_op_name(op);
    if (!((mask >> lane) & 1u))
        fail(std::string(name) + " at " + site_name(site) + ": mask " + hex(mask) +
             " does not include the calling lane " + std::to_string(lane));
    if (mask & ~lanes_present(warp))
        fail(std::string(name) + " at " + site_name(site) + ": mask " + hex(mask) +
             " names lanes that do not exist (the block has " +
             std::to_string(g.threads_per_block) + " threads)");
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail(std::string(name) + " at " + site_name(site) + ": width " + std::to_string(width) +
             " is not a power of two <= 32");
    self->wait = Wait::Warp;
    self->site = site;
    self->op = op;
    box.mask[lane] = mask;
    box.in[lane] = value;
    box.arg[lane] = arg;
    box.width[lane] = width;
    box.arrived |= 1u << lane;
    if ((box.arrived & mask) == mask) {
        // Every lane of the mask is here: check they agree, then compute all results.
        uint64_t ballot = 0;
        for (unsigned l = 0; l < 32; ++l) {
            if (!((mask >> l) & 1u)) continue;
            const Fiber& other = g.fibers[warp * 32 + l];
            if (box.mask[l] != mask || other.op != op)
                fail(std::string("divergent warp intrinsics in warp ") + std::to_string(warp) +
                     " of " + block_name() + ": lane " + std::to_string(lane) + " calls " + name +
                     " (" + site_name(site) + ") with mask " + hex(mask) + " but lane " +
                     std::to_string(l) + " calls " + warp_op_name(other.op) + " (" +
                     site_name(other.site) + ")");
            if (box.in[l]) ballot |= 1ull << l;
        }
        for (unsigned l = 0; l < 32; ++l) {
            if (!((mask >> l) & 1u)) continue;
            switch (op) {
                case WarpOp::Sync: box.out[l] = 0; break;
                case WarpOp::Ballot: box.out[l] = ballot; break;
                case WarpOp::Any: box.out[l] = ballot != 0; break;
                case WarpOp::All: box.out[l] = ballot == mask; break;
                default: {
                    int src = source_lane(op, int(l), box.arg[l], box.width[l]);
                    if (!((mask >> src) & 1u))
                        fail(std::string(name) + " at " + site_name(site) + ": lane " +
                             std::to_string(l) + " reads lane " + std::to_string(src) +
                             ", which is not in the mask " + hex(mask) + " (undefined on a GPU)");
                    box.out[l] = box.in[src];
                }
            }
            g.fibers[warp * 32 + l].wait = Wait::Runnable;
        }
        box.arrived &= ~mask;
    }
    yield_to_scheduler();
    return box.out[lane];
}

}  // namespace emu
