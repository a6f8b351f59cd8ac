using TorchSharp;
using Workbook.Circuits;
using Workbook.Diagnostics;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Diagnostics;

/// <summary>The benchmark workload (on a small shape) and the device helpers the GPU checks rely on.</summary>
public class PatchingWorkloadTests
{
    static TransformerConfig Small => KnownConfigs.Gpt2SmallShape with
    {
        Name = "small", NLayers = 2, DModel = 32, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 97, NCtx = 32,
    };

    [Fact]
    public void TheWorkloadPatchesTheComplementOfItsCircuitWithResampleValues()
    {
        using var scope = NewDisposeScope();
        using var w = PatchingWorkload.Create(batch: 3, seq: 6, config: Small, circuitEdges: 40);
        Assert.Equal(40, w.Circuit.Count);
        Assert.Equal(w.Graph.EdgeCount - 40, w.PatchedEdges);
        Assert.Equal(new long[] { 3, 6 }, w.Clean.shape);
        // The same evaluation through the public one-call API: complement of the circuit, resample, every position.
        var expected = CircuitPatching.PatchedLogits(w.Model, w.Circuit,
            new Methodology { Value = AblationValue.Resample, Positions = TokenPositions.All }, new PromptPair(w.Clean, w.Corrupt));
        TensorAssert.Close(expected, w.PatchedForward(), 1e-5);
        // Token-specific masks keep each circuit edge at one position only, so they patch more and change the result.
        Assert.True(TensorAssert.MaxAbsDiff(w.PatchedForward(), w.PatchedForwardTokenSpecific()) > 1e-4);
        Assert.True(TensorAssert.MaxAbsDiff(w.PlainForward(), w.PatchedForward()) > 1e-4);
    }

    [Fact]
    public void TheWorkloadIsTheSameForTheSameSeed()
    {
        using var scope = NewDisposeScope();
        using var a = PatchingWorkload.Create(batch: 2, seq: 4, config: Small, circuitEdges: 25);
        using var b = PatchingWorkload.Create(batch: 2, seq: 4, config: Small, circuitEdges: 25);
        Assert.Equal(a.Circuit.ToLines(), b.Circuit.ToLines());
        Assert.Equal(TensorAssert.ToArray(a.Clean), TensorAssert.ToArray(b.Clean));
        Assert.Equal(0, TensorAssert.MaxAbsDiff(a.Model.blocks[1].mlp!.W_in, b.Model.blocks[1].mlp!.W_in));
        using var c = PatchingWorkload.Create(batch: 2, seq: 4, config: Small, circuitEdges: 25, seed: 9);
        Assert.NotEqual(a.Circuit.ToLines(), c.Circuit.ToLines());
    }

    [Fact]
    public void RandomWeightsHaveTheIntendedScale()
    {
        using var scope = NewDisposeScope();
        using var model = PatchingWorkload.RandomModel(Small);
        Assert.Equal(1.0, model.blocks[0].ln1!.w.mean().item<float>(), 6);
        double std = model.embed.W_E.std().item<float>();
        Assert.InRange(std, 0.018, 0.022); // N(0, 0.02²) over 97 x 32 draws
    }

    [Fact]
    public void BenchmarkReportsMediansAndRatios()
    {
        var lines = new List<string>();
        var result = PatchingBenchmark.Run("cpu", batch: 2, seq: 4, repeats: 3, warmup: 1, progress: lines.Add, config: Small, circuitEdges: 30);
        Assert.Equal(3, result.Plain.Repeats);
        Assert.InRange(result.Plain.MedianMs, result.Plain.MinMs, result.Plain.MaxMs);
        Assert.Equal(result.Patched.MedianMs / result.Plain.MedianMs, result.PatchedOverPlain, 1e-12);
        Assert.Equal(2 / (result.Plain.MedianMs / 1000), result.PlainPromptsPerSecond, 1e-9);
        Assert.False(result.AllowTf32);
        Assert.Contains(lines, l => l.StartsWith("patched forward", StringComparison.Ordinal));
    }

    [Fact]
    public void WorkloadSizesAreValidated()
    {
        Assert.Throws<ArgumentException>(() => PatchingWorkload.Create(batch: 0, config: Small));
        Assert.Throws<ArgumentException>(() => PatchingWorkload.Create(batch: 1, seq: 33, config: Small));
        var e = Assert.Throws<ArgumentException>(() => PatchingWorkload.Create(batch: 1, seq: 4, config: Small, circuitEdges: 100_000));
        Assert.Contains("edges", e.Message);
    }

    [Fact]
    public void DevicesCompareByTypeAndIndex()
    {
        Assert.True(Devices.Same(CPU, Devices.Parse("cpu")));
        Assert.True(Devices.Same(new Device(DeviceType.CUDA, 0), new Device(DeviceType.CUDA)));
        Assert.False(Devices.Same(new Device(DeviceType.CUDA, 0), new Device(DeviceType.CUDA, 1)));
        Assert.False(Devices.Same(CPU, new Device(DeviceType.CUDA, 0)));
        Assert.Throws<ArgumentException>(() => Devices.Parse("cuda:x"));
        Assert.Throws<ArgumentException>(() => Devices.Parse("tpu"));
        Assert.Contains("threads", Devices.Describe(CPU));
    }

    [Fact]
    public void PatchValuesOnAnotherDeviceOrMasksOnTheHostAreAccepted()
    {
        // The engine reads masks wherever they live and moves patch values to the model's device; on a CPU-only
        // machine both are the CPU, so this checks the plumbing (a GPU run of check.sh covers the real move).
        using var scope = NewDisposeScope();
        var model = PatchingWorkload.RandomModel(Small);
        var g = ComputationGraph.Factorized(model.Config);
        var prompts = new PromptPair(PatchingWorkload.RandomTokens(2, 5, 97, 1), PatchingWorkload.RandomTokens(2, 5, 97, 2));
        var circuit = PatchingWorkload.RandomCircuit(g, 30, 4);
        using var masks = PatchMasks.ForCircuit(circuit, new Methodology { Positions = TokenPositions.All }, 5, device: CPU);
        var values = PatchValues.Compute(model, g, AblationValue.Resample, PatchDirection.AblateClean, prompts);
        var viaApi = CircuitPatching.PatchedLogits(model, circuit, new Methodology { Positions = TokenPositions.All }, prompts);
        TensorAssert.Close(viaApi, Patcher.Run(model, masks, values, prompts.Clean), 1e-6);
    }
}
