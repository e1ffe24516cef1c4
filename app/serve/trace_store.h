// The traces attnviz serve keeps for the page's later questions (payload,
// tiles, top-k, exports, differences): least recently used first out, bounded
// by a count and by bytes. A trace handed out stays alive while it is used,
// even if evicted meanwhile.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "attnviz/trace.h"

namespace attnviz::serve {

struct StoredTrace {
    std::string id;
    std::string model;  // the server's model id
    AttentionTrace trace;
    bool long_input = false;  // more tokens than a page payload carries
    double forward_ms = 0;
    uint64_t bytes = 0;
};

// The bytes a trace holds (its probabilities, queries, keys, biases, hidden states).
uint64_t trace_bytes(const AttentionTrace& trace);

class TraceStore {
public:
    TraceStore(size_t max_count, uint64_t max_bytes)
        : max_count_(max_count), max_bytes_(max_bytes) {}

    // Keeps `trace` (evicting the least recently used) and returns its new id.
    std::string add(std::shared_ptr<StoredTrace> trace);
    std::shared_ptr<const StoredTrace> get(const std::string& id);
    // Evicts least recently used traces until `bytes` fewer are held (or none).
    void release(uint64_t bytes);
    // Evicts least recently used traces, the newest apart, until at most `bytes` are held.
    void shrink_to(uint64_t bytes);
    uint64_t bytes() const;
    size_t count() const;

private:
    void evict_locked();
    size_t max_count_;
    uint64_t max_bytes_;
    mutable std::mutex mutex_;
    std::list<std::shared_ptr<StoredTrace>> order_;  // front: most recently used
    std::map<std::string, std::list<std::shared_ptr<StoredTrace>>::iterator> by_id_;
    uint64_t bytes_ = 0;
    uint64_t counter_ = 0;
};

// Which request of each tab is the newest: a request whose seq is older than
// the tab's newest is stale and is answered 409.
class Tabs {
public:
    // Records `seq` as the tab's newest; false when a newer one is known.
    bool start(const std::string& tab, int64_t seq);
    bool stale(const std::string& tab, int64_t seq) const;

private:
    mutable std::mutex mutex_;
    std::map<std::string, int64_t> newest_;
    std::list<std::string> order_;  // bounded: the oldest tabs are forgotten
};

}  // namespace attnviz::serve
