// A one-line download progress bar on stderr: file, percent, bar, size, speed
// and time left. Draws nothing unless enabled and stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace attnviz::hub {

class ProgressBar {
public:
    ProgressBar(std::string label, bool enabled);
    ~ProgressBar();  // ends the line if anything was drawn
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // Bytes already on disk from an earlier run: not counted in the speed.
    void resumed_from(uint64_t bytes) { start_bytes_ = bytes; }
    // done includes a resumed prefix.
    void update(uint64_t done, uint64_t total);

private:
    void draw(uint64_t done, uint64_t total);

    std::string label_;
    bool enabled_;
    bool drawn_ = false;
    uint64_t start_bytes_ = 0;
    uint64_t last_done_ = 0, last_total_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace attnviz::hub
