using TorchSharp;
using TorchSharp.Modules;
using Workbook.Util;
using static TorchSharp.torch;
using static Workbook.Model.HookNames;

namespace Workbook.Model;

/// <summary>
/// A decoder (or, for Tracr, bidirectional) transformer with TransformerLens hook points, covering
/// GPT-2, GPT-NeoX/Pythia, attention-only and Tracr-compiled models. Weights live in TransformerLens
/// layout; loading them is separate (see <c>Workbook.Checkpoints.ModelLoader</c>). Forward passes never
/// modify the model: hooks and patches apply to one call, or to the lifetime of a <see cref="HookScope"/>.
/// </summary>
public sealed class HookedTransformer : nn.Module
{
    public TransformerConfig Config { get; }
    public ScalarType DType { get; }

    public EmbedWeights embed { get; }
    public PosEmbedWeights? pos_embed { get; }
    public ModuleList<BlockWeights> blocks { get; }
    public LayerNormWeights? ln_final { get; }
    public UnembedWeights unembed { get; }

    readonly List<HookScope> _attached = new();
    readonly object _attachLock = new();

    public HookedTransformer(TransformerConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(config.Name)
    {
        Config = config.Validate();
        DType = dtype;
        device ??= CPU;
        embed = new EmbedWeights(config, device, dtype);
        register_module("embed", embed);
        if (config.Positional == PositionalEmbedding.Learned)
        {
            pos_embed = new PosEmbedWeights(config, device, dtype);
            register_module("pos_embed", pos_embed);
        }
        blocks = new ModuleList<BlockWeights>(Enumerable.Range(0, config.NLayers).Select(l => new BlockWeights(l, config, device, dtype)).ToArray());
        register_module("blocks", blocks);
        if (config.UseLayerNorm)
        {
            ln_final = new LayerNormWeights("ln_final", config, device, dtype);
            register_module("ln_final", ln_final);
        }
        unembed = new UnembedWeights(config, device, dtype);
        register_module("unembed", unembed);
    }

    public Device Device => embed.W_E.device;

    /// <summary>The unembedding matrix [d_model, d_vocab_out] (W_E transposed when tied).</summary>
    public Tensor W_U => unembed.W_U ?? (Tensor)embed.W_E.t();

    /// <summary>
    /// Runs the model on token ids [batch, seq] and returns logits [batch, seq, d_vocab_out].
    /// <paramref name="hooks"/> apply to this call only; <paramref name="interceptor"/> is the patching engine's entry.
    /// </summary>
    public Tensor Forward(Tensor tokens, HookSet? hooks = null, IForwardInterceptor? interceptor = null)
    {
        var pass = new ForwardPass(this, CombinedHooks(hooks), cache: null, cacheFilter: null, interceptor);
        using var scope = NewDisposeScope();
        return pass.Run(tokens).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the model and records the activations whose hook names pass <paramref name="names"/> (all when null).</summary>
    public (Tensor Logits, ActivationCache Cache) RunWithCache(Tensor tokens, Func<string, bool>? names = null, HookSet? hooks = null)
    {
        var cache = new ActivationCache();
        try
        {
            var pass = new ForwardPass(this, CombinedHooks(hooks), cache, names ?? (_ => true), interceptor: null);
            using var scope = NewDisposeScope();
            var logits = pass.Run(tokens).MoveToOuterDisposeScope();
            return (logits, cache);
        }
        catch
        {
            cache.Dispose();
            throw;
        }
    }

    /// <summary>Attaches hooks to every forward pass until the returned scope is disposed.</summary>
    public HookScope AttachHooks(HookSet hooks)
    {
        ValidateHookNames(hooks);
        var scope = new HookScope(this, hooks);
        lock (_attachLock) _attached.Add(scope);
        return scope;
    }

    internal void Detach(HookScope scope)
    {
        lock (_attachLock) _attached.Remove(scope);
    }

    /// <summary>Number of hook scopes currently attached (0 outside any <c>using</c> block).</summary>
    public int AttachedHookScopes
    {
        get { lock (_attachLock) return _attached.Count; }
    }

    HookSet? CombinedHooks(HookSet? perCall)
    {
        if (perCall != null) ValidateHookNames(perCall);
        lock (_attachLock)
        {
            if (_attached.Count == 0) return perCall is { IsEmpty: false } ? perCall : null;
            var sets = _attached.Select(s => s.Hooks).ToList();
            if (perCall != null) sets.Add(perCall);
            return HookSet.Merge(sets);
        }
    }

    /// <summary>Every hook point name of this model, in forward order (from the declarations in <see cref="HookNames"/>).</summary>
    public IReadOnlyList<string> HookPointNames() => HookNames.For(Config).Select(h => h.Name).ToList();

    /// <summary>
    /// Lists every hook point with the shape of its activation for input tokens of [batch, seq], as one forward pass
    /// with every hook recording fires them; a shape that differs from its declaration is a bug and throws. Every
    /// activation is batch-first, so the pass runs on one prompt and the batch is written into the shapes: a listing
    /// for a batch of a million costs what one for a single prompt does.
    /// </summary>
    public IReadOnlyList<HookInfo> ListHooks(int batch = 1, int seq = 4)
    {
        if (batch < 1 || seq < 1 || seq > Config.NCtx)
            throw new ArgumentOutOfRangeException(nameof(seq), $"Need batch >= 1 and 1 <= seq <= {Config.NCtx}.");
        var hooks = HookNames.For(Config);
        var shapes = new Dictionary<string, long[]>();
        var recorder = new HookSet();
        foreach (var h in hooks)
            recorder.Add(h.Name, (t, n) =>
            {
                var shape = t.shape;
                if (shape.Length == 0 || shape[0] != 1) throw new InvalidOperationException($"Hook point '{n}' is not batch-first: [{string.Join(", ", shape)}].");
                shape[0] = batch;
                shapes.TryAdd(n, shape);
                return null;
            });
        using (no_grad())
        using (var tokens = zeros(1, seq, dtype: ScalarType.Int64, device: Device))
        {
            var pass = new ForwardPass(this, recorder, null, null, null);
            using var scope = NewDisposeScope();
            pass.Run(tokens);
        }
        return hooks.Select(h =>
        {
            var shape = shapes.TryGetValue(h.Name, out var s) ? s : throw new InvalidOperationException($"Hook point '{h.Name}' did not fire.");
            var declared = h.Point.ShapeFor(Config, batch, seq);
            if (!shape.SequenceEqual(declared))
                throw new InvalidOperationException($"Hook point '{h.Name}' fired with shape [{string.Join(", ", shape)}] but is declared [{string.Join(", ", h.Point.Shape)}] = [{string.Join(", ", declared)}].");
            return new HookInfo(h.Name, shape);
        }).ToList();
    }

    void ValidateHookNames(HookSet hooks)
    {
        HashSet<string>? known = null;
        foreach (var name in hooks.Names)
        {
            known ??= new HashSet<string>(HookPointNames(), StringComparer.Ordinal);
            if (!known.Contains(name))
                throw new ArgumentException($"Unknown hook point '{name}' for model '{Config.Name}'.{NearestNames.DidYouMean(name, known)}");
        }
    }

    /// <summary>Checks token ids [batch, seq] against the model and returns them as int64 on the model's device.</summary>
    public Tensor PrepareTokens(Tensor tokens)
    {
        if (tokens.dim() != 2)
            throw new ArgumentException($"Tokens must have shape [batch, seq]; got [{string.Join(", ", tokens.shape)}].");
        if (tokens.shape[1] == 0 || tokens.shape[0] == 0)
            throw new ArgumentException("Tokens must contain at least one prompt of at least one token.");
        if (tokens.shape[1] > Config.NCtx)
            throw new ArgumentException($"Sequence length {tokens.shape[1]} exceeds the model's context of {Config.NCtx} tokens.");
        if (tokens.dtype != ScalarType.Int64 && tokens.dtype != ScalarType.Int32)
            throw new ArgumentException($"Tokens must be integer ids; got {tokens.dtype}.");
        // One device-to-host transfer for both bounds (each .item() on a GPU waits for the queue to drain).
        using var bounds = stack(new[] { tokens.min(), tokens.max() }).to(ScalarType.Int64).cpu();
        long min = bounds[0].item<long>(), max = bounds[1].item<long>();
        if (min < 0 || max >= Config.DVocab)
            throw new ArgumentException($"Token id {(min < 0 ? min : max)} is outside the vocabulary of {Config.DVocab} ids.");
        return tokens.to(ScalarType.Int64).to(Device);
    }

    /// <summary>One forward computation; owns the hook and cache plumbing so that unused hooks cost a null check.</summary>
    sealed class ForwardPass
    {
        readonly HookedTransformer _m;
        readonly TransformerConfig _c;
        readonly HookSet? _hooks;
        readonly ActivationCache? _cache;
        readonly Func<string, bool>? _cacheFilter;
        readonly IForwardInterceptor? _ic;

        public ForwardPass(HookedTransformer model, HookSet? hooks, ActivationCache? cache, Func<string, bool>? cacheFilter, IForwardInterceptor? interceptor)
        {
            _m = model;
            _c = model.Config;
            _hooks = hooks;
            _cache = cache;
            _cacheFilter = cacheFilter;
            _ic = interceptor;
        }

        bool Wants(string name) => name.Length > 0 && ((_hooks != null && _hooks.Contains(name)) || (_cacheFilter != null && _cacheFilter(name)));

        Tensor H(string name, Tensor x)
        {
            if ((_hooks == null && _cache == null) || name.Length == 0) return x;
            var fs = _hooks?.Get(name);
            if (fs != null)
            {
                foreach (var f in fs)
                {
                    var r = f(x, name);
                    if (r is not null)
                    {
                        if (!r.shape.SequenceEqual(x.shape))
                            throw new InvalidOperationException($"Hook on '{name}' returned shape [{string.Join(", ", r.shape)}]; expected [{string.Join(", ", x.shape)}].");
                        x = r.to(x.dtype).to(x.device);
                    }
                }
            }
            if (_cache != null && _cacheFilter!(name)) _cache.Store(name, x);
            return x;
        }

        public Tensor Run(Tensor tokens)
        {
            tokens = _m.PrepareTokens(tokens);
            long B = tokens.shape[0], T = tokens.shape[1];
            var embedded = H(HookNames.Embed.Name, _m.embed.W_E.index_select(0, tokens.reshape(-1)).view(B, T, _c.DModel));
            Tensor resid = embedded;
            if (_m.pos_embed != null)
            {
                var pos = H(HookNames.PosEmbed.Name, _m.pos_embed.W_pos.narrow(0, 0, T).unsqueeze(0).expand(B, T, _c.DModel));
                resid = embedded.Plus(pos);
            }
            _ic?.OnSource(SourceSite.Embedding, 0, resid);
            var rotary = _c.Positional == PositionalEmbedding.Rotary ? RotaryTables(T) : default;

            // Without hooks, a cache or an interceptor that holds block tensors, nothing outlives a block but its
            // output: free each block's intermediates as it ends, so peak memory is one block's, not the whole pass's
            // (at batch 1000 x 16 on GPT-2 small, the difference between fitting an 80 GB card and not).
            bool scoped = (_hooks is null || _hooks.IsEmpty) && _cache is null && (_ic is null || !_ic.KeepsBlockTensors);
            for (int l = 0; l < _c.NLayers; l++)
            {
                if (!scoped)
                {
                    resid = Block(l, resid, rotary);
                    continue;
                }
                using var blockScope = NewDisposeScope();
                resid = Block(l, resid, rotary).MoveToOuterDisposeScope();
            }

            var final = _ic?.Destination(DestinationSite.FinalResidual, _c.NLayers, resid) ?? resid;
            var x = LayerNorm(final, _m.ln_final, HookNames.FinalLnScale.Name, HookNames.FinalLnNormalized.Name);
            // The bias goes into the product's own fresh memory: the logits are the pass's largest tensor (160 MB for GPT-2
            // small at 50 x 16), and a second copy of them cost a tenth of the forward. Same numbers as a + b.
            return x.matmul(_m.W_U).PlusIntoFresh(_m.unembed.b_U);
        }

        Tensor Block(int l, Tensor resid, (Tensor Cos, Tensor Sin) rotary)
        {
            var n = HookNames.Block(l);
            var w = _m.blocks[l];
            var residPre = H(n[ResidPre], resid);
            _ic?.OnSource(SourceSite.BlockInput, l, residPre);
            // A parallel block's MLP reads the block input, so its (possibly patched) input is fixed before the
            // heads run; asking for it first keeps the engine's sources in layer order.
            var mlpInput = _c.HasMlp && _c.ParallelAttnMlp ? _ic?.Destination(DestinationSite.MlpInput, l, residPre) ?? residPre : null;
            var attnOut = Attention(l, n, w, residPre, rotary);

            Tensor residPost;
            if (!_c.HasMlp)
            {
                residPost = residPre.Plus(attnOut);
            }
            else if (_c.ParallelAttnMlp)
            {
                var mlpOut = Mlp(l, n, w, mlpInput!);
                residPost = residPre.Plus(attnOut).Plus(mlpOut);
            }
            else
            {
                var residMid = residPre.Plus(attnOut);
                residMid = H(n[ResidMid], _ic?.Destination(DestinationSite.ResidMid, l, residMid) ?? residMid);
                _ic?.OnSource(SourceSite.ResidMid, l, residMid);
                var mlpOut = Mlp(l, n, w, _ic?.Destination(DestinationSite.MlpInput, l, residMid) ?? residMid);
                residPost = residMid.Plus(mlpOut);
            }
            residPost = _ic?.Destination(DestinationSite.ResidPost, l, residPost) ?? residPost;
            return H(n[ResidPost], residPost);
        }

        Tensor Attention(int l, BlockHookNames n, BlockWeights w, Tensor residPre, (Tensor Cos, Tensor Sin) rotary)
        {
            var a = w.attn;
            long B = residPre.shape[0], T = residPre.shape[1];
            int dh = _c.DHead, D = _c.DModel;

            // Heads whose outputs the engine replaces everywhere are not computed at all; Hh counts the others.
            var replaced = _ic?.ReplacedHeads(l, residPre);
            if (replaced is not null && ((_hooks is not null && !_hooks.IsEmpty) || _cache is not null))
                throw new InvalidOperationException($"Block {l}: the patching engine replaces {_c.NHeads - replaced.Computed.Length} head(s) without computing them, " +
                    "but hooks or a cache observe this pass and would miss them; attach the hooks before the patched run is set up.");
            int Hh = replaced?.Computed.Length ?? _c.NHeads;
            if (Hh == 0) return replaced!.Sum.Plus(a.b_O).expand(B, T, D);

            // Per-head inputs exist only when patched or hooked: [k, H, B, T, D] with k = 1 or 3. The engine may compute
            // its heads' Q, K and V itself (most heads sharing one input); hooks on the inputs always see them dense.
            bool hookQkv = Wants(n[QInput]) || Wants(n[KInput]) || Wants(n[VInput]);
            bool hookPerHead = hookQkv || Wants(n[AttnIn]) || Wants(n[Ln1Scale]) || Wants(n[Ln1Normalized]);
            var projection = new AttentionProjection(_c, w, replaced);
            var inputs = _ic?.AttentionInputs(l, residPre);
            var direct = inputs is not null && !hookPerHead ? inputs.Project(projection) : null;
            var perHead = direct is null ? inputs?.Dense(Hh) : null;
            if (perHead is null && direct is null && (hookQkv || Wants(n[AttnIn])))
                perHead = residPre.unsqueeze(0).unsqueeze(0).expand(1, Hh, B, T, D);

            Tensor q, k, v; // [B, T, H, dh]
            if (direct is not null)
            {
                (q, k, v) = (direct.Q, direct.K, direct.V);
            }
            else if (perHead is null)
            {
                var x = LayerNorm(residPre, w.ln1, n[Ln1Scale], n[Ln1Normalized]);
                q = projection.ProjectShared(x, 0);
                k = projection.ProjectShared(x, 1);
                v = projection.ProjectShared(x, 2);
            }
            else
            {
                if (perHead.dim() != 5 || (perHead.shape[0] != 1 && perHead.shape[0] != 3))
                    throw new InvalidOperationException($"Per-head attention inputs must be [1 or 3, heads, batch, seq, d_model]; got [{string.Join(", ", perHead.shape)}].");
                // Engine layout [k, H, B, T, D]; hooks see TransformerLens layout [B, T, H, D].
                int kinds = (int)perHead.shape[0];
                if (kinds == 1 && Wants(n[AttnIn]))
                    perHead = FromHookLayout(H(n[AttnIn], perHead[0].permute(1, 2, 0, 3))).unsqueeze(0);
                if (hookQkv)
                {
                    var split = new[] { n[QInput], n[KInput], n[VInput] }.Select((name, i) =>
                        FromHookLayout(H(name, perHead[kinds == 3 ? i : 0].permute(1, 2, 0, 3)))).ToArray();
                    perHead = stack(split);
                    kinds = 3;
                }
                // One LayerNorm over every head copy, then one batched product per head input. When the LayerNorm's
                // hooks are wanted they fire per input in TransformerLens layout, as TransformerLens does.
                var normed = Wants(n[Ln1Scale]) || Wants(n[Ln1Normalized])
                    ? stack(Enumerable.Range(0, kinds).Select(i => FromHookLayout(LayerNorm(perHead[i].permute(1, 2, 0, 3), w.ln1, n[Ln1Scale], n[Ln1Normalized]))).ToArray())
                        .reshape(kinds * Hh, B * T, D)
                    : LayerNorm(perHead.reshape(kinds * Hh, B * T, D), w.ln1, n[Ln1Scale], n[Ln1Normalized]);
                Tensor Project(Tensor xs, Tensor W, Tensor bias) => // [H, B*T, D] x [H, D, dh] -> [B, T, H, dh]
                    bmm(xs, W).Plus(bias.unsqueeze(1)).view(Hh, B, T, dh).permute(1, 2, 0, 3);
                var xq = normed.narrow(0, 0, Hh);
                q = Project(xq, projection.Weight(0), projection.Bias(0));
                k = Project(kinds == 3 ? normed.narrow(0, Hh, Hh) : xq, projection.Weight(1), projection.Bias(1));
                v = Project(kinds == 3 ? normed.narrow(0, 2 * Hh, Hh) : xq, projection.Weight(2), projection.Bias(2));
            }
            q = H(n[Q], q);
            k = H(n[K], k);
            v = H(n[V], v);
            if (_c.Positional == PositionalEmbedding.Rotary)
            {
                q = H(n[RotQ], ApplyRotary(q, rotary));
                k = H(n[RotK], ApplyRotary(k, rotary));
            }

            var scores = q.permute(0, 2, 1, 3).matmul(k.permute(0, 2, 3, 1)).DividedBy(Math.Sqrt(dh)); // [B, H, Tq, Tk]
            if (_c.Causal)
                scores = scores.FilledWhere(CausalMask(T, scores.device), float.NegativeInfinity);
            scores = H(n[AttnScores], scores);
            var pattern = H(n[Pattern], scores.softmax(-1));
            var z = H(n[Z], pattern.matmul(v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)); // [B, T, H, dh]

            Tensor attnOut;
            bool needResults = (_ic?.NeedsHeadResults(l) ?? false) || Wants(n[Result]);
            var W_O = projection.Output;
            if (needResults)
            {
                var results = einsum("bthd,hdD->hbtD", z, W_O); // [H, B, T, D]
                if (Wants(n[Result])) results = H(n[Result], results.permute(1, 2, 0, 3)).permute(2, 0, 1, 3);
                _ic?.OnSource(SourceSite.HeadResults, l, results);
                attnOut = results.sum(dim: 0);
            }
            else
            {
                attnOut = z.reshape(B, T, Hh * dh).matmul(W_O.reshape(Hh * dh, D));
            }
            attnOut = replaced is null ? attnOut.PlusIntoFresh(a.b_O) : attnOut.PlusInPlace(replaced.Sum).PlusInPlace(a.b_O);
            return H(n[AttnOut], attnOut);
        }

        Tensor Mlp(int l, BlockHookNames n, BlockWeights w, Tensor input)
        {
            var m = w.mlp!;
            var x = LayerNorm(H(n[MlpIn], input), w.ln2, n[Ln2Scale], n[Ln2Normalized]);
            var pre = H(n[MlpPre], x.matmul(m.W_in).PlusIntoFresh(m.b_in));
            var post = H(n[MlpPost], Activate(pre));
            var output = H(n[MlpOut], post.matmul(m.W_out).PlusIntoFresh(m.b_out));
            _ic?.OnSource(SourceSite.MlpOut, l, output);
            return output;
        }

        Tensor Activate(Tensor x) => _c.Activation switch
        {
            ActivationFunction.Relu => nn.functional.relu(x),
            ActivationFunction.Gelu => nn.functional.gelu(x),
            ActivationFunction.GeluNew when is_grad_enabled() && x.requires_grad =>
                x.Times(0.5) * tanh(x.Plus(x.Power(3).Times(0.044715)).Times(Math.Sqrt(2.0 / Math.PI))).Plus(1.0),
            ActivationFunction.GeluNew => GeluNewInPlace(x),
            _ => throw new NotSupportedException(_c.Activation.ToString()),
        };

        // GPT-2's tanh GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with the same operations in the same order as
        // the autograd form above (so the same numbers), written into two temporaries instead of seven: without
        // gradients nothing needs the intermediates, and each fresh tensor of a large batch's [B, T, d_mlp] costs
        // memory traffic. (The fused gelu(approximate: tanh) kernel is faster still but rounds differently, which
        // would change the committed toy models' retraining.) x itself is never written: a hook or cache may hold it.
        static Tensor GeluNewInPlace(Tensor x)
        {
            var inner = x.Power(3).TimesInPlace(0.044715).PlusInPlace(x).TimesInPlace(Math.Sqrt(2.0 / Math.PI));
            inner.tanh_().PlusInPlace(1.0);
            return x.Times(0.5).mul_(inner);
        }

        Tensor LayerNorm(Tensor x, LayerNormWeights? ln, string scaleHook, string normalizedHook)
        {
            if (ln == null) return x; // Tracr models have no LayerNorm.
            if (!Wants(scaleHook))
                return H(normalizedHook, nn.functional.layer_norm(x, new long[] { _c.DModel }, ln.w, ln.b, _c.LayerNormEps));
            // TransformerLens's explicit form, when the scale is hooked or cached.
            var centred = x - x.mean(new long[] { -1 }, keepdim: true);
            var scale = H(scaleHook, centred.Power(2).mean(new long[] { -1 }, keepdim: true).Plus(_c.LayerNormEps).sqrt());
            return H(normalizedHook, (centred / scale * ln.w).Plus(ln.b));
        }

        Tensor FromHookLayout(Tensor bthd) => bthd.permute(2, 0, 1, 3).contiguous(); // [B, T, H, D] -> [H, B, T, D]

        (Tensor Cos, Tensor Sin) RotaryTables(long T)
        {
            int half = _c.RotaryDim / 2;
            var device = _m.Device;
            // Same float32 arithmetic as HuggingFace's GPT-NeoX: inv_freq = 1 / base^(2i / rotary_dim).
            var invFreq = TensorMath.PowerOf(_c.RotaryBase, arange(0, _c.RotaryDim, 2, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32).DividedBy(_c.RotaryDim)).reciprocal();
            var positions = arange(T, dtype: ScalarType.Float32, device: device);
            var angles = outer(positions, invFreq.to(ScalarType.Float32)); // [T, half]
            _ = half;
            return (angles.cos().to(_m.DType).view(T, 1, -1), angles.sin().to(_m.DType).view(T, 1, -1));
        }

        Tensor ApplyRotary(Tensor x, (Tensor Cos, Tensor Sin) t)
        {
            // x: [B, T, H, dh]; rotate-half on the first RotaryDim dims ("GPT-NeoX style").
            int r = _c.RotaryDim, half = r / 2;
            var x1 = x.narrow(-1, 0, half);
            var x2 = x.narrow(-1, half, half);
            var rotated = cat(new[] { x1 * t.Cos - x2 * t.Sin, (x2 * t.Cos).Plus(x1 * t.Sin) }, -1);
            return r == _c.DHead ? rotated : cat(new[] { rotated, x.narrow(-1, r, _c.DHead - r) }, -1);
        }

        static Tensor CausalMask(long T, Device device) =>
            ones(T, T, dtype: ScalarType.Bool, device: device).triu(1);
    }
}
