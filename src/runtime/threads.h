// How many threads a run uses, and the scope that applies it to the one pool
// involved: attnviz's OpenMP loops and oneDNN share one libgomp pool.
#pragma once

namespace attnviz::runtime {

// requested > 0: that many. Otherwise ATTNVIZ_NUM_THREADS when set (a bad
// value is an Error naming it), else the cores this process may run on.
int resolve_thread_count(int requested);

// Sets the OpenMP thread count for the calling thread; restores it on exit.
class ThreadScope {
public:
    explicit ThreadScope(int threads);
    ~ThreadScope();
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

    int threads() const { return threads_; }

private:
    int threads_;
    int previous_;
};

}  // namespace attnviz::runtime
