"""attnviz.dask.head_stats on a distributed LocalCluster of two worker processes
equals the single-process result exactly: every example's sums are integers
(fixed point, rounded once per example in the process that ran it) and the
reduction adds integers, so neither the partitioning nor the order of the
partial sums can change a bit. The forward runs with one thread on both sides,
so each example's probabilities are the same bits in every process."""

import json
import os
import unittest

import numpy as np

import attnviz.dask

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
DEMO = os.path.join(SOURCE, "models", "demo")


def held_out_sentences(count):
    with open(os.path.join(SOURCE, "tests", "data", "demo", "heldout_sentences.txt"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()][:count]


class LocalClusterRun(unittest.TestCase):
    def test_two_worker_processes_equal_one_process(self):
        from distributed import Client, LocalCluster

        sentences = held_out_sentences(60)
        pairs = list(zip(sentences[0::2], sentences[1::2]))
        single = attnviz.dask.partition_sums(sentences, DEMO, threads=1)
        single_pairs = attnviz.dask.partition_sums(pairs, DEMO, pairs=True, threads=1)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            distributed = attnviz.dask.head_stats(sentences, DEMO, npartitions=7, threads=1, client=client)
            distributed_pairs = attnviz.dask.head_stats(pairs, DEMO, pairs=True, npartitions=5, threads=1,
                                                         client=client)
            # Both workers took part: each loaded the model once, into its own process.
            loaded = client.run(lambda: sorted(k[0] for k in attnviz.dask._MODELS))
            self.assertEqual(len(loaded), 2)
            self.assertTrue(all(v == [DEMO] for v in loaded.values()), loaded)
        for got, want in ((distributed, single), (distributed_pairs, single_pairs)):
            expected = attnviz.dask.finish(want)
            self.assertEqual(got["examples"], expected["examples"])
            for g, w in zip(got["blocks"], expected["blocks"]):
                for key in ("sums", "rows", "non_finite"):
                    self.assertTrue(np.array_equal(g[key], w[key]), key)
                self.assertEqual(g["uniform_entropy"], w["uniform_entropy"])
                for stat in attnviz.dask.STATISTICS:
                    np.testing.assert_array_equal(g["means"][stat], w["means"][stat])
        self.assertEqual(distributed["examples"], 60)
        self.assertEqual(distributed_pairs["examples"], 30)
        self.assertEqual(json.dumps(sorted(distributed["blocks"][0]["means"])), json.dumps(sorted(attnviz.dask.STATISTICS)))


if __name__ == "__main__":
    unittest.main()
