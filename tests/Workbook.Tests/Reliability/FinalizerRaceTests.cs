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

    /// <summary>
    /// Runs <paramref name="work"/> and fails when a tensor it created on this thread was not disposed (left to the
    /// finalizer): TorchSharp's per-thread count of live tensors must be where it was. Returns what the work returned.
    /// </summary>
    static T LeavesNoTensorToTheFinalizer<T>(string what, Func<T> work)
    {
        long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var result = work();
        long after = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(after == before, $"{after - before} tensor(s) created {what} were left to the finalizer");
        return result;
    }

    /// <summary>
    /// The race above needs a temporary that only the finalizer frees. Whether a reader leaves one is exact, not
    /// probabilistic: TorchSharp counts the tensors created and disposed on this thread, and one left to the finalizer
    /// is never counted as disposed. (torch.save's strided views once made such a temporary, the view copied contiguous,
    /// and a fuzzing run's test host died in libtorch with a segfault.)
    /// </summary>
    [Theory]
    [InlineData("torch.save, contiguous")]
    [InlineData("torch.save, strided view")]
    [InlineData("safetensors")]
    public void ReadingACheckpointLeavesNoTensorToTheFinalizer(string format)
    {
        string dir = Directory.CreateTempSubdirectory("wb-finalizer-").FullName;
        try
        {
            string path = Path.Combine(dir, format == "safetensors" ? "w.safetensors" : "w.pth");
            using (NewDisposeScope())
            {
                var w = arange(48, dtype: ScalarType.Float32).reshape(6, 8);
                if (format == "safetensors") SafetensorsWriter.Write(path, new[] { ("w", w) });
                else new TorchSaveWriter().Add("w", w).AddView("w_t", "w", 0, new long[] { 8, 6 }, new long[] { 1, 8 }).Write(path);
            }
            string name = format.EndsWith("strided view", StringComparison.Ordinal) ? "w_t" : "w";
            float expected = name == "w_t" ? 8f : 1f; // element [0, 1]: w[0, 1] = 1; w_t[0, 1] = w[1, 0] = 8

            float read = LeavesNoTensorToTheFinalizer("while reading", () =>
            {
                using ITensorFile file = format == "safetensors" ? SafetensorsFile.Open(path) : TorchCheckpointFile.Open(path);
                using var t = file.Read(name);
                using var element = t[0, 1];
                return element.item<float>();
            });
            Assert.Equal(expected, read);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    [InlineData("toy-docstring")]
    [InlineData("tracr-reverse")]
    public void LoadingAModelLeavesNoTensorToTheFinalizer(string model)
    {
        string spec = model.StartsWith("tiny", StringComparison.Ordinal) ? TestFiles.Fixture(model) : model;
        LeavesNoTensorToTheFinalizer($"while loading '{model}'", () => { ModelLoader.Load(spec).Dispose(); return 0; });
    }

    [Theory]
    [InlineData(Component.Edge)]
    [InlineData(Component.Node)]
    public void AnEvaluationGridLeavesNoTensorToTheFinalizer(Component component)
    {
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        var part = TokenizedDataset.Create(Workbook.Tests.Evaluation.EvaluationTests.TokenDataset(11, 12), null, false, false);
        var graph = component == Component.Edge ? Workbook.Graph.ComputationGraph.Factorized(model.Config) : Workbook.Graph.ComputationGraph.Residual(model.Config);
        var circuit = Workbook.Evaluation.CircuitChoice.Of(Workbook.Circuits.SymbolicCircuit.FromCircuit("half",
            Workbook.Circuits.Circuit.From(graph, graph.Edges.Where(e => e.Index % 2 == 0).Select(e => new Workbook.Circuits.CircuitEdge(e, null)))));
        var methodologies = new[] { "resample", "mean-corrupt", "zero", "mean-batch" }
            .Select(value => new Methodology { Component = component, Value = AblationValue.Parse(value) }).ToArray();
        var result = LeavesNoTensorToTheFinalizer("by the evaluation", () => Workbook.Evaluation.Evaluator.RunWithBaseline(new Workbook.Evaluation.EvaluationRequest
        {
            Model = model, Task = Workbook.Tests.Evaluation.EvaluationTests.TokenTask, Parts = new[] { part }, Circuit = circuit,
            Methodologies = methodologies, Metrics = new[] { Workbook.Metrics.MetricKind.LogitDiffRecovered, Workbook.Metrics.MetricKind.Kl }, BatchSize = 4,
        }));
        Assert.Equal(methodologies.Length * 12 * 2, result.Rows.Count); // a row per methodology, prompt and metric
    }

    [Theory]
    [InlineData(DiscoveryAlgorithm.Acdc, SearchSpace.Edge)]
    [InlineData(DiscoveryAlgorithm.Eap, SearchSpace.Edge)]
    [InlineData(DiscoveryAlgorithm.SubnetworkProbing, SearchSpace.Edge)]
    [InlineData(DiscoveryAlgorithm.Hisp, SearchSpace.Node)]
    [InlineData(DiscoveryAlgorithm.EapIgInputs, SearchSpace.Edge)]
    [InlineData(DiscoveryAlgorithm.EapIgActivations, SearchSpace.Edge)]
    public void CircuitDiscoveryLeavesNoTensorToTheFinalizer(DiscoveryAlgorithm algorithm, SearchSpace search)
    {
        using var model = ModelLoader.Load("tracr-reverse");
        var task = KnownTasks.TracrReverse;
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 8), null);
        var scores = LeavesNoTensorToTheFinalizer($"by {algorithm}", () => CircuitDiscovery.Run(new DiscoveryRequest
        {
            Model = model, Task = task, Parts = parts, Algorithm = algorithm, Search = search, Threads = 1,
            SubnetworkProbing = new SubnetworkProbingOptions { Epochs = 2 },
        }));
        Assert.NotNull(scores);
    }

    [Fact]
    public void ARobustnessCardLeavesNoTensorToTheFinalizer()
    {
        // The card runs the report grid, discovery for the ranking, and faithfulness curves through stacked-circuit sweeps.
        var task = KnownTasks.TracrXProportion;
        using var model = ModelLoader.Load(task.PaperModel);
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 12), null);
        var card = LeavesNoTensorToTheFinalizer("for the robustness card", () => Workbook.Curves.RobustnessCards.Compute(new Workbook.Curves.CardRequest
        {
            Model = model, Task = task, Parts = parts, Circuit = Workbook.Evaluation.CircuitChoice.Parse("tracr-xproportion-ours"), Points = 3,
        }));
        Assert.NotEmpty(card.Curves);
    }

    [Theory]
    [InlineData("TransformerLens")]
    [InlineData("HuggingFace GPT-2")]
    public void LoadingAWrittenCheckpointLeavesNoTensorToTheFinalizer(string format)
    {
        string dir = Directory.CreateTempSubdirectory("wb-finalizer-").FullName;
        try
        {
            // TransformerLens checkpoints are written for attention-only models (the docstring model's family).
            using (var source = ModelLoader.Load(format == "TransformerLens" ? "toy-docstring" : TestFiles.Fixture("tiny-gpt2")))
            {
                if (format == "TransformerLens") TransformerLensCheckpointWriter.Save(source, dir);
                else Gpt2CheckpointWriter.Save(source, dir);
            }
            LeavesNoTensorToTheFinalizer($"while loading a {format} checkpoint", () => { ModelLoader.Load(dir).Dispose(); return 0; });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
