"""grain pipeline: row source → this process's slice → batch → prefetching iterator."""
from __future__ import annotations

import grain


def make_iterator(source, batch_size: int, process_index: int, process_count: int,
                  num_threads: int = 1, prefetch: int = 4, start_step: int = 0):
  """Iterator of host batches for this process; its state is the data checkpoint.

  Rows are sliced by process before batching, so every process reads disjoint rows
  and the global batch is the same whatever the process count. `start_step` skips whole
  batches: global batch s holds the same rows for any process count, which is how a run
  resumes on a different number of processes than it saved with.
  """
  local_batch = batch_size // process_count
  ds = grain.MapDataset.source(source)[process_index::process_count]
  ds = ds.batch(local_batch, drop_remainder=True)[start_step:]
  opts = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
  return iter(ds.to_iter_dataset(opts))
