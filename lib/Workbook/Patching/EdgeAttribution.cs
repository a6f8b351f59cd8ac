using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// The gradient of a loss with respect to every edge's patch mask at mask = 0, from one forward and one backward
/// pass (edge attribution patching). <see cref="Total"/>[e] = ∂L/∂m_e for a mask shared by the batch;
/// <see cref="PerPrompt"/>[b, e] = ∂L/∂m_{b,e} for a mask of prompt b alone (their sum over b is the total).
/// Indexed by <see cref="Edge.Index"/> of <see cref="Graph"/>.
/// </summary>
public sealed record EdgeGradients(ComputationGraph Graph, double[] Total, double[,]? PerPrompt);

/// <summary>
/// Integrated gradients over the input (EAP-IG, Hanna et al. 2024): the token embeddings of the run move from those of
/// <see cref="Baseline"/> (the corrupt prompts, same shape as the input) to the input's own in <see cref="Steps"/> steps,
/// α_k = k/m for k = 1..m (a right Riemann sum, so the last step is the plain run).
/// </summary>
public sealed record InputIntegration(Tensor Baseline, int Steps);

/// <summary>
/// Edge attribution patching at scale: ∂L/∂m_e at m = 0 for every edge of a graph in one clean forward and one
/// backward pass, without differentiable masks.
///
/// With every mask at 0 the patched forward is the plain forward, and a destination reads
/// <c>x_dest = resid + Σ_src m·(patch_src − current_src)</c>, so
/// <c>∂L/∂m_e = ⟨∂L/∂x_dest, patch_src − current_src⟩</c>, summed over batch, positions and d_model (the term
/// m·∂current/∂m vanishes at m = 0). The forward therefore records Δ = patch − current for every source and gives
/// every destination its own input (the residual plus a zero leaf that requires gradients); one backward pass yields ∂L/∂x_dest for all of
/// them; each site's scores are then one matrix product [rows, B·T·D] × [B·T·D, sources] (per prompt: a batched
/// product over the batch). This equals the general path (<see cref="PatchMasks.Filled"/> with requiresGrad and
/// <see cref="Patcher.Run"/>), whose per-site einsums over kept Δ chunks are far slower on large models.
/// </summary>
public static class EdgeAttribution
{
    /// <summary>
    /// Gradients of <paramref name="loss"/> (applied to the logits [B, T, V] of <paramref name="input"/>; any shape, summed)
    /// with respect to every edge mask at 0, patch values <paramref name="values"/>. Positions before
    /// <paramref name="neverPatchedPrefix"/> are never patched, so they contribute nothing.
    /// <paramref name="perPrompt"/> also returns each prompt's share.
    /// </summary>
    /// <remarks>
    /// With <paramref name="integrate"/>, ∂L/∂x_dest is the mean over the integration steps, each a forward pass whose token
    /// embeddings are interpolated; Δ always comes from the last step, the plain run of <paramref name="input"/>. One step is
    /// therefore exactly the plain computation (the same operations in the same order).
    /// </remarks>
    public static EdgeGradients Compute(HookedTransformer model, ComputationGraph graph, PatchValues values, Tensor input,
        Func<Tensor, Tensor> loss, int neverPatchedPrefix = 0, bool perPrompt = false, InputIntegration? integrate = null)
    {
        if (graph.Config.NLayers != model.Config.NLayers || graph.Config.NHeads != model.Config.NHeads || graph.Config.HasMlp != model.Config.HasMlp
            || graph.Config.ParallelAttnMlp != model.Config.ParallelAttnMlp)
            throw new ArgumentException($"The graph was built for '{graph.Config.Name}', which does not match model '{model.Config.Name}'.");
        if (neverPatchedPrefix < 0 || neverPatchedPrefix >= input.shape[1] && neverPatchedPrefix != 0)
            throw new ArgumentException($"The never-patched prefix ({neverPatchedPrefix}) must be within the {input.shape[1]}-token prompts.");
        using var scope = NewDisposeScope();
        var patch = values.Values is { } pv && !Devices.Same(pv.device, model.Device) ? pv.to(model.Device) : values.Values;
        if (patch is not null && (patch.dim() != 4 || patch.shape[0] != graph.Sources.Count))
            throw new ArgumentException($"Patch values must be [{graph.Sources.Count} sources, batch, seq, d_model]; got [{string.Join(", ", patch.shape)}].");
        int steps = integrate?.Steps ?? 1;
        if (steps < 1) throw new ArgumentException($"The number of integration steps must be at least 1, got {steps}.");
        if (integrate is not null && !integrate.Baseline.shape.SequenceEqual(input.shape))
            throw new ArgumentException($"The integration baseline [{string.Join(", ", integrate.Baseline.shape)}] must have the input's shape [{string.Join(", ", input.shape)}].");
        Tensor? baselineEmbedding = null;
        if (steps > 1)
        {
            using var noGrad = no_grad();
            Tensor? captured = null;
            model.Forward(integrate!.Baseline, new HookSet().Read(HookNames.Embed.Name, t => captured = t.detach().clone().MoveToOuterDisposeScope()));
            baselineEmbedding = captured ?? throw new InvalidOperationException("The model reported no token embedding.");
        }
        AttributionRecorder recorder = null!;
        Tensor?[] inputs = Array.Empty<Tensor?>();
        Tensor?[] grads = Array.Empty<Tensor?>();
        for (int k = 1; k <= steps; k++)
        {
            double alpha = (double)k / steps;
            // Earlier steps free their forward pass as they end (only the running sum of gradients lives on); the last step
            // is the plain run, whose Δ and leaves the scoring below needs.
            var stepScope = k < steps ? NewDisposeScope() : null;
            try
            {
                // Embeddings corrupt + α(clean − corrupt); the last step (α = 1) is the plain run, which also records Δ.
                var hooks = k < steps ? new HookSet().Replace(HookNames.Embed.Name, clean => baselineEmbedding!.Plus((clean - baselineEmbedding!).Times(alpha))) : null;
                recorder = new AttributionRecorder(graph, patch);
                Tensor[] stepGrads;
                using (enable_grad())
                {
                    var logits = model.Forward(input, hooks, recorder);
                    var total = loss(logits).sum();
                    if (!total.requires_grad)
                        throw new InvalidOperationException("The loss does not depend on the model's outputs (no gradient flows).");
                    inputs = recorder.SiteInputs;
                    var wanted = inputs.Where(t => t is not null).Select(t => t!).ToArray();
                    stepGrads = torch.autograd.grad(new[] { total }, wanted, allow_unused: true).ToArray();
                }
                using var noGrad = no_grad();
                if (steps == 1) grads = stepGrads.Select(g => g is null || g.IsInvalid ? null : (Tensor?)g).ToArray();
                else if (k == 1) grads = stepGrads.Select(g => g is null || g.IsInvalid ? null : (Tensor?)g.detach().clone().MoveToOuterDisposeScope()).ToArray();
                else
                    for (int i = 0; i < grads.Length; i++)
                        if (stepGrads[i] is { IsInvalid: false } step)
                            grads[i] = grads[i] is { } sum ? sum.PlusInPlace(step) : (k < steps ? step.detach().clone().MoveToOuterDisposeScope() : step);
            }
            finally
            {
                stepScope?.Dispose();
            }
        }
        if (steps > 1)
            using (no_grad())
                for (int i = 0; i < grads.Length; i++)
                    if (grads[i] is { } sum) sum.mul_(TensorMath.Full(new long[] { 1 }, 1.0 / steps, sum.dtype, sum.device));
        var delta = recorder.Delta ?? throw new InvalidOperationException("The forward pass recorded no source.");
        long B = delta.shape[1], T = delta.shape[2], D = delta.shape[3];
        using var _ = no_grad();
        if (neverPatchedPrefix > 0) delta.narrow(2, 0, neverPatchedPrefix).zero_();
        var totalScores = new double[graph.EdgeCount];
        var promptScores = perPrompt ? new double[B, graph.EdgeCount] : null;
        int g = 0;
        for (int s = 0; s < recorder.Sites.Count; s++)
        {
            if (inputs[s] is null) continue;
            var grad = grads[g++];
            if (grad is null) continue; // the loss does not depend on this site
            var site = recorder.Sites[s];
            int rows = site.Rows, n = site.SourceCount;
            var gs = grad.reshape(rows, B, T * D);
            var ds = delta.narrow(0, site.FirstSource, n).reshape(n, B, T * D);
            // [rows, n] and [B, rows, n], in float64 on the host.
            var sum = gs.reshape(rows, B * T * D).mm(ds.reshape(n, B * T * D).t()).to(ScalarType.Float64).cpu().data<double>().ToArray();
            double[]? each = perPrompt
                ? bmm(gs.permute(1, 0, 2), ds.permute(1, 2, 0)).to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray()
                : null;
            for (int r = 0; r < rows; r++)
            {
                var edges = graph.EdgesInto(site.Destinations[r]);
                for (int c = 0; c < n; c++)
                {
                    int e = edges[c].Index;
                    totalScores[e] = sum[r * n + c];
                    if (each is not null)
                        for (int b = 0; b < B; b++) promptScores![b, e] = each[(b * rows + r) * n + c];
                }
            }
        }
        return new EdgeGradients(graph, totalScores, promptScores);
    }

    /// <summary>
    /// During one clean forward pass: records Δ = patch − current for every source (detached) and hands every
    /// destination its own input, the residual plus a zero leaf whose gradient is then that destination's ∂L/∂x.
    /// </summary>
    sealed class AttributionRecorder : IForwardInterceptor
    {
        readonly ComputationGraph _graph;
        readonly Tensor? _patch;
        readonly SourceIndex _index;
        readonly int[] _attentionSite, _mlpSite, _midSite, _postSite;
        readonly int _endSite = -1;
        readonly bool _residualView;

        public IReadOnlyList<PatchSite> Sites { get; }
        /// <summary>Per site, the zero leaf added to its destinations' inputs (rows first), or null when the forward never reached it.</summary>
        public Tensor?[] SiteInputs { get; }
        public Tensor? Delta { get; private set; }

        public AttributionRecorder(ComputationGraph graph, Tensor? patch)
        {
            _graph = graph;
            _patch = patch;
            _index = new SourceIndex(graph);
            _residualView = graph.View == GraphView.Residual;
            Sites = PatchSite.For(graph);
            SiteInputs = new Tensor?[Sites.Count];
            int L = graph.Config.NLayers;
            _attentionSite = Enumerable.Repeat(-1, L).ToArray();
            _mlpSite = Enumerable.Repeat(-1, L).ToArray();
            _midSite = Enumerable.Repeat(-1, L).ToArray();
            _postSite = Enumerable.Repeat(-1, L).ToArray();
            for (int i = 0; i < Sites.Count; i++)
            {
                var s = Sites[i];
                switch (s.Kind)
                {
                    case SiteKind.Attention: _attentionSite[s.Block] = i; break;
                    case SiteKind.Mlp: _mlpSite[s.Block] = i; break;
                    case SiteKind.ResidEnd when !_residualView: _endSite = i; break;
                    case SiteKind.ResidMid: _midSite[s.Block] = i; break;
                    default: _postSite[s.Block] = i; break; // Resid Post b, or Resid End (the last block) in the residual view
                }
            }
        }

        void Record(int first, Tensor current)
        {
            if (first < 0) return;
            using var _ = no_grad();
            int count = (int)current.shape[0];
            Delta ??= zeros(new long[] { _graph.Sources.Count, current.shape[1], current.shape[2], current.shape[3] }, dtype: current.dtype, device: current.device)
                .MoveToOuterDisposeScope();
            var rows = Delta.narrow(0, first, count);
            if (_patch is null) rows.copy_(current).neg_();
            else rows.copy_(_patch.narrow(0, first, count).expand(current.shape)).sub_(current);
        }

        /// <summary>
        /// <paramref name="resid"/> plus a zero leaf that requires gradients: the destinations of the site read it, so the
        /// leaf's gradient is ∂L/∂x_dest through those destinations only, and gradients still flow on into earlier layers
        /// (the model's own parameters need none). The leaf is a broadcast zero, so it costs no memory of its own.
        /// </summary>
        Tensor Own(int site, Tensor resid, long[] shape)
        {
            var leaf = zeros(1, dtype: resid.dtype, device: resid.device).expand(shape).requires_grad_(true).MoveToOuterDisposeScope();
            SiteInputs[site] = leaf;
            return resid.Plus(leaf);
        }

        public void OnSource(SourceSite site, int layer, Tensor value)
        {
            switch (site)
            {
                case SourceSite.Embedding when !_residualView: Record(_index.ResidStart, value.unsqueeze(0)); break;
                case SourceSite.BlockInput when _residualView: Record(_index.BlockInput[layer], value.unsqueeze(0)); break;
                case SourceSite.ResidMid when _residualView: Record(_index.ResidMid[layer], value.unsqueeze(0)); break;
                case SourceSite.HeadResults: Record(_index.FirstHead[layer], value); break;
                case SourceSite.MlpOut: Record(_index.Mlp[layer], value.unsqueeze(0)); break;
            }
        }

        public bool NeedsHeadResults(int layer) => true;

        public HeadInputs? AttentionInputs(int layer, Tensor residPre)
        {
            int site = _attentionSite[layer];
            if (_residualView || site < 0) return null;
            int heads = _graph.Config.NHeads, kinds = Sites[site].Rows / heads;
            return HeadInputs.FromDense(Own(site, residPre.unsqueeze(0).unsqueeze(0), new long[] { kinds, heads, residPre.shape[0], residPre.shape[1], residPre.shape[2] }));
        }

        public Tensor? Destination(DestinationSite site, int layer, Tensor current)
        {
            int index = site switch
            {
                DestinationSite.MlpInput when !_residualView => _mlpSite[layer],
                DestinationSite.FinalResidual when !_residualView => _endSite,
                DestinationSite.ResidMid when _residualView => _midSite[layer],
                DestinationSite.ResidPost when _residualView => _postSite[layer],
                _ => -1,
            };
            return index < 0 ? null : Own(index, current, current.shape);
        }
    }
}
