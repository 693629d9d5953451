using Xunit;

// libtorch's thread count is one setting per process, and several tests set it: they run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
