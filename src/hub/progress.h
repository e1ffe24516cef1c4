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

    // done includes a resumed prefix; the speed counts only this run's bytes.
    void update(uint64_t done, uint64_t total);

private:
    void draw(uint64_t done, uint64_t total);

    std::string label_;
    bool enabled_;
    bool drawn_ = false;
    bool have_start_ = false;
    uint64_t start_bytes_ = 0;
    uint64_t last_done_ = 0, last_total_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace attnviz::hub
