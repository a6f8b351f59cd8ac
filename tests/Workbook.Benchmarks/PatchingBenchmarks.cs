using BenchmarkDotNet.Attributes;
using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Benchmarks;

/// <summary>
/// Patched forward vs plain forward on a GPT-2-small-shaped model, batch 50 × 16 tokens, all 32,491 edges
/// maskable, the complement of a 771-edge circuit patched with resample values (issue 4's benchmark).
/// </summary>
[MemoryDiagnoser]
public class PatchingBenchmarks
{
    HookedTransformer _model = null!;
    Tensor _clean = null!, _corrupt = null!;
    PatchMasks _masks = null!, _positionalMasks = null!;
    PatchValues _values = null!;

    [Params(50)] public int Batch;
    public const int Seq = 16;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        _model = Gpt2SmallShape.RandomModel();
        _clean = Gpt2SmallShape.RandomTokens(Batch, Seq, 1).DetachFromDisposeScope();
        _corrupt = Gpt2SmallShape.RandomTokens(Batch, Seq, 2).DetachFromDisposeScope();
        var graph = ComputationGraph.Factorized(_model.Config);
        var circuit = Gpt2SmallShape.RandomCircuit(graph);
        var batch = new PromptPair(_clean, _corrupt);
        _masks = PatchMasks.ForCircuit(circuit, new Methodology { Positions = TokenPositions.All }, Seq);
        // Token-specific variant: the same edges, each at one position (like IOI's 869 edge-positions).
        var rng = new Random(3);
        var positional = Circuit.From(graph, circuit.Edges.Select(e => new CircuitEdge(e.Edge, rng.Next(Seq))));
        _positionalMasks = PatchMasks.ForCircuit(positional, new Methodology { Positions = TokenPositions.Specific }, Seq);
        _values = new PatchValues(PatchValues.Compute(_model, graph, AblationValue.Resample, PatchDirection.AblateClean, batch).Values!.DetachFromDisposeScope());
    }

    [Benchmark(Baseline = true)]
    public void PlainForward()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _model.Forward(_clean);
    }

    [Benchmark]
    public void PatchedForward()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Patcher.Run(_model, _masks, _values, _clean);
    }

    [Benchmark]
    public void PatchedForwardTokenSpecific()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Patcher.Run(_model, _positionalMasks, _values, _clean);
    }
}
