#include "hub/progress.h"

#include <unistd.h>

#include <cstdio>

#include "attnviz/hub.h"

namespace attnviz::hub {

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)),
      enabled_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
    if (!drawn_) return;
    draw(last_done_, last_total_);
    std::fputc('\n', stderr);
}

void ProgressBar::update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    last_done_ = done;
    last_total_ = total;
    // Ten redraws a second are plenty, and keep a fast download fast.
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(done, total);
}

void ProgressBar::draw(uint64_t done, uint64_t total) {
    drawn_ = true;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double speed =
        seconds > 0 && done > start_bytes_ ? static_cast<double>(done - start_bytes_) / seconds : 0;
    constexpr int kWidth = 24;
    std::string bar;
    std::string percent = "   ";
    std::string left = "--:--";
    if (total > 0) {
        const double fraction = static_cast<double>(done) / static_cast<double>(total);
        const int filled = static_cast<int>(fraction * kWidth);
        bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
        char text[32];
        std::snprintf(text, sizeof text, "%3d%%", static_cast<int>(fraction * 100));
        percent = text;
        if (speed > 0) {
            const auto eta = static_cast<long>(static_cast<double>(total - done) / speed);
            std::snprintf(text, sizeof text, "%ld:%02ld", eta / 60, eta % 60);
            left = text;
        }
    } else {
        bar = std::string(kWidth, '?');
    }
    const std::string size = format_size(done) + (total > 0 ? " / " + format_size(total) : "");
    std::fprintf(stderr, "\r%-28.28s %s [%s] %s  %s/s  ETA %s\033[K", label_.c_str(),
                 percent.c_str(), bar.c_str(), size.c_str(),
                 format_size(static_cast<uint64_t>(speed)).c_str(), left.c_str());
    std::fflush(stderr);
}

}  // namespace attnviz::hub
