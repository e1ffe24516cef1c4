#include "runtime/threads.h"

#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "attnviz/error.h"
#include "attnviz/model.h"  // kMaxThreads

namespace attnviz::runtime {

int resolve_thread_count(int requested) {
    const std::string bounds = " (1 to " + std::to_string(kMaxThreads) + ")";
    if (requested > kMaxThreads)
        throw Error(std::to_string(requested) + " threads is not a thread count" + bounds);
    if (requested > 0) return requested;
    if (const char* env = std::getenv("ATTNVIZ_NUM_THREADS"); env && *env) {
        char* end = nullptr;
        const long value = std::strtol(env, &end, 10);
        if (*end != '\0' || value < 1 || value > kMaxThreads)
            throw Error(std::string("ATTNVIZ_NUM_THREADS=\"") + env + "\" is not a thread count" +
                        bounds);
        return static_cast<int>(value);
    }
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) return CPU_COUNT(&cpus);
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadScope::ThreadScope(int threads) : threads_(threads), previous_(omp_get_max_threads()) {
    omp_set_num_threads(threads_);
}

ThreadScope::~ThreadScope() { omp_set_num_threads(previous_); }

}  // namespace attnviz::runtime
