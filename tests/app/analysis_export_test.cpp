// attnviz export --rollout --flow --value-norms --word-level on the demo model:
// the arrays docs/analysis.md lists, with their shapes (the values are tested
// against the references in tests/analysis), and the flags' refusals.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "io/files.h"

namespace {

namespace fs = std::filesystem;

int run(const std::string& args) {
    const std::string command = std::string(ATTNVIZ_CLI) + " " + args + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The .npy header of one stored .npz entry: "{'descr': '<f4', ..., 'shape': (4, 10, 10), }".
std::string header_of(const std::string& npz, const std::string& name) {
    const size_t at = npz.find(name + ".npy");
    if (at == std::string::npos) return "";
    const size_t start = npz.find("{'descr'", at);
    return npz.substr(start, npz.find('}', start) - start + 1);
}

TEST(AnalysisExport, WritesTheArraysWithTheirShapes) {
    const fs::path out =
        fs::temp_directory_path() / ("attnviz_analysis_" + std::to_string(getpid()) + ".npz");
    const std::string model = std::string(ATTNVIZ_SOURCE_DIR) + "/models/demo";
    // 14 tokens, 10 words: [CLS] unaffable tokenizers , don ' t they ? [SEP]
    ASSERT_EQ(run("export --model " + model +
                  " --text \"Unaffable tokenizers, don't they?\" --rollout --flow --value-norms "
                  "--word-level -o " +
                  out.string()),
              0);
    const std::string npz = attnviz::io::read_file(out);
    EXPECT_NE(header_of(npz, "rollout").find("'shape': (4, 10, 10)"), std::string::npos);
    EXPECT_NE(header_of(npz, "flow").find("'shape': (10, 10)"), std::string::npos);
    EXPECT_NE(header_of(npz, "value_norms").find("'shape': (4, 4, 10, 10)"), std::string::npos);
    EXPECT_NE(header_of(npz, "words").find("'shape': (10,)"), std::string::npos);
    EXPECT_NE(header_of(npz, "word_ids").find("'shape': (14,)"), std::string::npos);
    EXPECT_NE(header_of(npz, "attentions").find("'shape': (4, 4, 14, 14)"), std::string::npos);
    fs::remove(out);
}

TEST(AnalysisExport, WordLevelNeedsAMeasure) {
    const std::string model = std::string(ATTNVIZ_SOURCE_DIR) + "/models/demo";
    EXPECT_EQ(run("export --model " + model + " --text \"a b\" --word-level -o /dev/null"), 1);
}

}  // namespace
