using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Reliability;

/// <summary>
/// The flaky "Expected false to be true ... toFloat at Scalar.h" (issue 16, item 14). TorchSharp turns numbers into
/// native Scalars (the implicit alpha = 1 of <c>a + b</c>, a double in <c>t * 0.5</c>) that nothing disposes: the
/// finalizer frees them. Once the Scalar's handle is passed to libtorch the managed object is unreachable, so a garbage
/// collection during the native call can free it while libtorch reads it, and libtorch then reads garbage. It shows up
/// only under memory pressure, as when the whole suite runs in parallel. Here the pressure is made deliberate: a thread
/// collects garbage and runs finalizers in a loop while the workbook's tensor code runs.
/// </summary>
public sealed class FinalizerRaceTests
{
    /// <summary>Runs <paramref name="work"/> while another thread forces collections and finalizers; returns what <paramref name="work"/> threw.</summary>
    static List<Exception> UnderGcPressure(TimeSpan duration, Action work)
    {
        var stop = DateTime.UtcNow + duration;
        var errors = new List<Exception>();
        var collector = new Thread(() =>
        {
            while (DateTime.UtcNow < stop)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }) { IsBackground = true };
        collector.Start();
        while (DateTime.UtcNow < stop)
        {
            try
            {
                work();
            }
            catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException)
            {
                errors.Add(e);
                if (errors.Count >= 3) break;
            }
        }
        collector.Join();
        return errors;
    }

    [Fact]
    public void SubnetworkProbingSurvivesCollectionsDuringNativeCalls()
    {
        // Subnetwork probing takes the engine's general path (a mask per prompt, with gradients): the flaky test's code.
        using var model = ModelLoader.Load("tracr-reverse");
        var task = KnownTasks.TracrReverse;
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 40), null);
        var errors = UnderGcPressure(TimeSpan.FromSeconds(12), () => CircuitDiscovery.Run(new DiscoveryRequest
        {
            Model = model, Task = task, Parts = parts, Algorithm = DiscoveryAlgorithm.SubnetworkProbing, Search = SearchSpace.Edge,
            SubnetworkProbing = new SubnetworkProbingOptions { Epochs = 3 }, Threads = 1,
        }));
        Assert.True(errors.Count == 0, $"{errors.Count} native errors, the first: {errors.FirstOrDefault()?.Message}");
    }

    [Fact]
    public void ForwardsAndPatchingSurviveCollectionsDuringNativeCalls()
    {
        var (model, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        var graph = Workbook.Graph.ComputationGraph.Factorized(model.Config, separateQkv: true);
        var errors = UnderGcPressure(TimeSpan.FromSeconds(8), () =>
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var values = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, batch);
            var masks = PatchMasks.Filled(graph, 0.5, seqLen: (int)batch.SeqLen);
            Patcher.Run(model, masks, values, batch.Clean);
            model.Forward(batch.Clean);
        });
        Assert.True(errors.Count == 0, $"{errors.Count} native errors, the first: {errors.FirstOrDefault()?.Message}");
    }
}
