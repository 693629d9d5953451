using Xunit;

// The engine's tests share one worker team and measure things about it (where a part runs, what a step allocates);
// test classes running side by side would hold the team for each other and turn those outcomes into a matter of
// timing. Each engine test already uses every core through the team, so running them one at a time costs little.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
