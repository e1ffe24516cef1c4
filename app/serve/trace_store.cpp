#include "serve/trace_store.h"

#include <cstdio>
#include <random>

namespace attnviz::serve {

uint64_t trace_bytes(const AttentionTrace& trace) {
    uint64_t bytes = sizeof(AttentionTrace);
    for (const AttentionBlock& block : trace.blocks)
        bytes += (block.probs.size() + block.queries.size() + block.keys.size() +
                  block.score_bias.size() + block.row_keys.size()) *
                     sizeof(float) +
                 block.probs_fp16.size() * sizeof(uint16_t) +
                 block.row_start.size() * sizeof(uint64_t);
    for (const HiddenStates& states : trace.hidden_states)
        bytes += states.values.size() * sizeof(float);
    for (const TokenSequence& sequence : trace.sequences)
        bytes += sequence.tokens.size() * (sizeof(TraceToken) + 32);
    return bytes;
}

std::string TraceStore::add(std::shared_ptr<StoredTrace> trace) {
    static thread_local std::mt19937_64 random{std::random_device{}()};
    std::lock_guard lock(mutex_);
    char id[40];
    std::snprintf(id, sizeof id, "t%llx%08llx", static_cast<unsigned long long>(++counter_),
                  static_cast<unsigned long long>(random() & 0xffffffffu));
    trace->id = id;
    trace->bytes = trace_bytes(trace->trace);
    bytes_ += trace->bytes;
    order_.push_front(trace);
    by_id_[trace->id] = order_.begin();
    evict_locked();
    return trace->id;
}

std::shared_ptr<const StoredTrace> TraceStore::get(const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto found = by_id_.find(id);
    if (found == by_id_.end()) return nullptr;
    order_.splice(order_.begin(), order_, found->second);
    return *found->second;
}

void TraceStore::evict_locked() {
    // The newest trace stays even when it alone exceeds the bytes bound.
    while (order_.size() > 1 && (order_.size() > max_count_ || bytes_ > max_bytes_)) {
        bytes_ -= order_.back()->bytes;
        by_id_.erase(order_.back()->id);
        order_.pop_back();
    }
}

void TraceStore::release(uint64_t bytes) {
    std::lock_guard lock(mutex_);
    uint64_t freed = 0;
    while (!order_.empty() && freed < bytes) {
        freed += order_.back()->bytes;
        bytes_ -= order_.back()->bytes;
        by_id_.erase(order_.back()->id);
        order_.pop_back();
    }
}

void TraceStore::shrink_to(uint64_t bytes) {
    std::lock_guard lock(mutex_);
    while (order_.size() > 1 && bytes_ > bytes) {
        bytes_ -= order_.back()->bytes;
        by_id_.erase(order_.back()->id);
        order_.pop_back();
    }
}

uint64_t TraceStore::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

size_t TraceStore::count() const {
    std::lock_guard lock(mutex_);
    return order_.size();
}

bool Tabs::start(const std::string& tab, int64_t seq) {
    constexpr size_t kMaxTabs = 4096;
    std::lock_guard lock(mutex_);
    const auto found = newest_.find(tab);
    if (found != newest_.end()) {
        if (found->second > seq) return false;
        found->second = seq;
        return true;
    }
    newest_[tab] = seq;
    order_.push_back(tab);
    if (order_.size() > kMaxTabs) {
        newest_.erase(order_.front());
        order_.pop_front();
    }
    return true;
}

bool Tabs::stale(const std::string& tab, int64_t seq) const {
    std::lock_guard lock(mutex_);
    const auto found = newest_.find(tab);
    return found != newest_.end() && found->second > seq;
}

}  // namespace attnviz::serve
