using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>A patching engine that may leave heads uncomputed (<see cref="ReplacedHeadPlan"/>).</summary>
internal interface IReplacesHeads
{
    /// <summary>The heads block <paramref name="layer"/> computes when some are replaced, or null when it computes all.</summary>
    IReadOnlyList<long>? ComputedHeads(int layer);
}

/// <summary>
/// An engine's replaced heads (<see cref="IForwardInterceptor.ReplacedHeads"/>): heads whose every out-edge is patched
/// at every position, so the model need not compute them. Per block with such heads: the heads computed, their indices
/// on the model's device, and the replaced heads' sources as runs, to sum their patch values.
/// </summary>
internal sealed class ReplacedHeadPlan
{
    readonly bool[] _replaced;           // per source
    readonly long[]?[] _computed;        // per block: the heads computed, ascending; null when none is replaced
    readonly Func<Tensor>?[] _computedIndex;
    readonly RowRuns?[] _replacedRuns;

    ReplacedHeadPlan(int sources, int layers)
    {
        _replaced = new bool[sources];
        _computed = new long[]?[layers];
        _computedIndex = new Func<Tensor>?[layers];
        _replacedRuns = new RowRuns?[layers];
    }

    /// <summary>No head replaced (hooks observe the pass, or masks that need gradients).</summary>
    public static ReplacedHeadPlan None(ComputationGraph graph) => new(graph.Sources.Count, graph.Config.NLayers);

    /// <summary>
    /// The heads whose source <paramref name="patchedEverywhere"/> marks (every site reading it patches it at every prompt,
    /// position and row; a source no site reads must be false). <paramref name="upload"/> puts a block's computed head
    /// indices on the model's device (as a tensor that exists by the forward pass).
    /// </summary>
    public static ReplacedHeadPlan From(ComputationGraph graph, bool[] patchedEverywhere, Func<long[], Func<Tensor>> upload)
    {
        var plan = None(graph);
        var index = new SourceIndex(graph);
        int heads = graph.Config.NHeads;
        for (int l = 0; l < graph.Config.NLayers; l++)
        {
            int first = index.FirstHead[l];
            var replaced = Enumerable.Range(0, heads).Where(h => patchedEverywhere[first + h]).ToArray();
            if (replaced.Length == 0) continue;
            foreach (int h in replaced) plan._replaced[first + h] = true;
            plan._computed[l] = Enumerable.Range(0, heads).Except(replaced).Select(h => (long)h).ToArray();
            plan._computedIndex[l] = upload(plan._computed[l]!);
            plan._replacedRuns[l] = RowRuns.Of(replaced.Select(h => (long)(first + h)).ToArray());
        }
        return plan;
    }

    /// <summary>
    /// Per source: does every site that reads it patch it throughout its column? <paramref name="columnAllOnes"/> holds,
    /// per site, whether each of its source columns is 1 at every prompt, position and row (null: the site patches nothing,
    /// or its mask needs gradients). A source no site reads is false.
    /// </summary>
    public static bool[] PatchedEverywhere(IReadOnlyList<PatchSite> sites, IReadOnlyList<bool[]?> columnAllOnes, int sources)
    {
        var everywhere = new bool[sources];
        var read = new bool[sources];
        Array.Fill(everywhere, true);
        for (int i = 0; i < sites.Count; i++)
            for (int c = 0; c < sites[i].SourceCount; c++)
            {
                int s = sites[i].FirstSource + c;
                read[s] = true;
                if (columnAllOnes[i] is not { } ones || !ones[c]) everywhere[s] = false;
            }
        for (int s = 0; s < sources; s++) everywhere[s] &= read[s];
        return everywhere;
    }

    /// <summary>Whether source <paramref name="source"/> is a replaced head (its Δ is zero: never written, never read).</summary>
    public bool IsReplaced(int source) => _replaced[source];

    /// <summary>The heads block <paramref name="layer"/> computes when some are replaced, or null when it computes all.</summary>
    public long[]? ComputedHeads(int layer) => _computed[layer];

    /// <summary>
    /// Block <paramref name="layer"/>'s replacement for a forward pass: the computed heads and the replaced heads' patch
    /// values summed from <paramref name="values"/> [sources, B or 1, T or 1, D] (zero ablation: null values, a zero sum).
    /// </summary>
    public HeadReplacement? For(int layer, Tensor? values, Tensor residPre)
    {
        if (_computed[layer] is not { } computed) return null;
        var sum = values is null ? zeros(1, 1, residPre.shape[2], dtype: residPre.dtype, device: residPre.device) : _replacedRuns[layer]!.Sum(values);
        return new HeadReplacement(computed, _computedIndex[layer]!(), sum);
    }
}
