namespace Workbook.Model;

/// <summary>
/// A rough upper estimate of the memory a forward pass's activations take, so that a batch that cannot fit is refused
/// with a message before anything is allocated (libtorch's own failure is a native backtrace, or the machine swaps).
/// </summary>
public static class ActivationMemory
{
    /// <summary>
    /// Bytes (float32) for <paramref name="batch"/> × <paramref name="seq"/> tokens: per layer the residual stream,
    /// q/k/v/z and per-head results, the attention scores and pattern, the MLP's hidden layer; plus the logits.
    /// With <paramref name="everyLayerKept"/> (a cache of every hook) all layers count, else one layer's worth.
    /// </summary>
    public static double EstimateBytes(TransformerConfig c, long batch, long seq, bool everyLayerKept)
    {
        double perToken = 7.0 * c.DModel                       // resid pre/mid/post, attention and MLP in/outputs, LN
                        + 4.0 * c.NHeads * c.DHead               // q, k, v, z
                        + 5.0 * c.NHeads * c.DModel              // per-head q/k/v inputs, attention input, per-head results
                        + 2.0 * c.NHeads * seq                   // scores and pattern
                        + (c.HasMlp ? 2.0 * c.DMlp : 0);         // pre and post activation
        double layers = everyLayerKept ? c.NLayers : 1;
        // Every hook's tensor is a separate allocation, and libtorch keeps temporaries of about the same size: twice the sum.
        return 2 * 4.0 * batch * seq * (perToken * layers + c.OutputVocab);
    }

    /// <summary>
    /// A patched forward pass: one layer's activations at a time, plus Δ = patch − current of every source of the
    /// factorized graph (embedding, each head, each MLP), [sources, batch, seq, d_model], kept for the whole pass.
    /// </summary>
    public static double EstimatePatchedBytes(TransformerConfig c, long batch, long seq)
    {
        double sources = 1 + c.NLayers * (c.NHeads + (c.HasMlp ? 1 : 0));
        return EstimateBytes(c, batch, seq, everyLayerKept: false) + 2 * 4.0 * batch * seq * sources * c.DModel;
    }

    /// <summary>
    /// Memory free for new allocations: MemAvailable from /proc/meminfo on Linux (what the kernel can hand out without
    /// swapping), capped by the process's memory limit; elsewhere the limit .NET sees.
    /// </summary>
    public static long AvailableBytes()
    {
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return Math.Min(limit, long.Parse(line["MemAvailable:".Length..].Trim().Split(' ')[0]) * 1024);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return limit;
    }
}
