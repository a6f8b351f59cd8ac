using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Diagnostics;

[JsonConverter(typeof(JsonStringEnumConverter<CheckOutcome>))]
public enum CheckOutcome { Pass, Fail, Skipped }

/// <summary>One check's verdict: the largest difference it saw and the tolerance it allowed.</summary>
public sealed record CheckResult(string Name, CheckOutcome Outcome, double? MaxDifference, double Tolerance, string Detail);

/// <summary>Reference logits for the self-check: an unpatched run of one side of a scenario file's prompts.</summary>
public sealed record ReferenceRun(PromptPair Prompts, bool InputIsClean, float[] Logits, long[] Shape, string Source)
{
    /// <summary>
    /// The prompts and the unpatched scenario (patch "none") of a scenario file in the reference fixtures' format.
    /// Prompts are placed on <paramref name="device"/>.
    /// </summary>
    public static ReferenceRun FromScenarioFile(string path, Device? device = null)
    {
        var file = ScenarioFile.Read(path);
        var unpatched = file.Scenarios.FirstOrDefault(s => s.Patch is null)
            ?? throw new FormatException($"{path}: no scenario with patch \"none\" to compare the unpatched logits with.");
        using var doc = Util.JsonInput.ReadFile(path);
        var scenario = doc.RootElement.GetProperty("scenarios").EnumerateArray()
            .First(s => s.GetProperty("name").GetString() == unpatched.Name);
        if (!scenario.TryGetProperty("logits", out var logits) || logits.ValueKind != JsonValueKind.Array)
            throw new FormatException($"{path}: scenario '{unpatched.Name}' has no expected \"logits\".");
        var values = new List<float>();
        long b = 0, t = -1, v = -1;
        foreach (var row in logits.EnumerateArray())
        {
            long rowT = 0;
            foreach (var position in row.EnumerateArray())
            {
                long count = 0;
                foreach (var x in position.EnumerateArray()) { values.Add(x.GetSingle()); count++; }
                if (v >= 0 && count != v) throw new FormatException($"{path}: scenario '{unpatched.Name}': ragged logits.");
                v = count;
                rowT++;
            }
            if (t >= 0 && rowT != t) throw new FormatException($"{path}: scenario '{unpatched.Name}': ragged logits.");
            t = rowT;
            b++;
        }
        var prompts = PromptPair.FromArrays(file.Clean, file.Corrupt, device);
        if (b != prompts.BatchSize || t != prompts.SeqLen)
            throw new FormatException($"{path}: scenario '{unpatched.Name}' has logits for [{b}, {t}] prompts but the file's tokens are [{prompts.BatchSize}, {prompts.SeqLen}].");
        return new ReferenceRun(prompts, unpatched.InputIsClean, values.ToArray(), new[] { b, t, v }, $"{Path.GetFileName(path)}:{unpatched.Name}");
    }
}

/// <summary>
/// Properties the model and the patching engine must have on any device, checked on real prompts: the unpatched logits
/// against reference logits, the residual-stream and head-output identities behind the graph's sources, hooks that
/// last one call, and the engine's identities (an empty patch is the clean run, resampling every edge is the corrupt
/// run, node ablation equals ablating all out-edges), plus full float32 matmul precision unless TF32 was asked for.
/// Every check runs even when an earlier one fails; an exception is that check's failure.
/// </summary>
public static class SelfCheck
{
    /// <summary>Logit tolerance of the reference fixtures.</summary>
    public const double ReferenceTolerance = 1e-4;
    /// <summary>Largest relative error a float32 matmul (K = 1024) may show without TF32; TF32 shows about 1e-4 or more.</summary>
    public const double Float32MatmulTolerance = 2e-5;

    public static IReadOnlyList<string> CheckNames { get; } = new[]
    {
        "reference-logits", "residual-identities", "head-results-sum", "hooks-per-call",
        "empty-patch-is-clean", "resample-all-is-corrupt", "node-equals-out-edges", "float32-matmul",
    };

    /// <summary>
    /// Runs the checks named in <paramref name="only"/> (all when null) on <paramref name="model"/>. Prompts come from
    /// <paramref name="reference"/> when given, else random ones; <paramref name="progress"/> hears each result as it is known.
    /// </summary>
    public static IReadOnlyList<CheckResult> Run(HookedTransformer model, ReferenceRun? reference = null,
        IEnumerable<string>? only = null, Action<CheckResult>? progress = null)
    {
        var wanted = only?.ToHashSet(StringComparer.Ordinal) ?? CheckNames.ToHashSet(StringComparer.Ordinal);
        var unknown = wanted.Except(CheckNames).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"Unknown check{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown)}; known: {string.Join(", ", CheckNames)}.");
        var prompts = reference?.Prompts ?? RandomPrompts(model);
        var checks = new (string Name, Func<CheckResult> Run)[]
        {
            ("reference-logits", () => ReferenceLogits(model, reference)),
            ("residual-identities", () => ResidualIdentities(model, prompts)),
            ("head-results-sum", () => HeadResultsSum(model, prompts)),
            ("hooks-per-call", () => HooksPerCall(model, prompts)),
            ("empty-patch-is-clean", () => EmptyPatch(model, prompts)),
            ("resample-all-is-corrupt", () => ResampleAll(model, prompts)),
            ("node-equals-out-edges", () => NodeEqualsOutEdges(model, prompts)),
            ("float32-matmul", () => Float32Matmul(model.Device)),
        };
        var results = new List<CheckResult>();
        foreach (var (name, run) in checks)
        {
            if (!wanted.Contains(name)) continue;
            CheckResult result;
            try
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                result = run();
            }
            catch (Exception e)
            {
                result = new CheckResult(name, CheckOutcome.Fail, null, 0, $"{e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
            results.Add(result);
            progress?.Invoke(result);
        }
        return results;
    }

    static PromptPair RandomPrompts(HookedTransformer model)
    {
        int seq = Math.Min(10, model.Config.NCtx);
        return new PromptPair(PatchingWorkload.RandomTokens(4, seq, model.Config.DVocab, 11, model.Device),
            PatchingWorkload.RandomTokens(4, seq, model.Config.DVocab, 12, model.Device));
    }

    static double MaxDiff(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new InvalidOperationException($"Shapes differ: [{string.Join(", ", a.shape)}] vs [{string.Join(", ", b.shape)}].");
        return (a.to(ScalarType.Float64) - b.to(a.device).to(ScalarType.Float64)).abs().max().cpu().item<double>();
    }

    static CheckResult Verdict(string name, double diff, double tolerance, string detail) =>
        new(name, diff <= tolerance ? CheckOutcome.Pass : CheckOutcome.Fail, diff, tolerance, detail);

    static CheckResult ReferenceLogits(HookedTransformer model, ReferenceRun? reference)
    {
        const string name = "reference-logits";
        if (reference is null)
            return new CheckResult(name, CheckOutcome.Skipped, null, ReferenceTolerance, "no reference logits (pass --scenarios with an unpatched scenario)");
        var input = reference.InputIsClean ? reference.Prompts.Clean : reference.Prompts.Corrupt;
        var logits = model.Forward(input);
        var expected = tensor(reference.Logits, reference.Shape).to(model.Device);
        return Verdict(name, MaxDiff(logits, expected), ReferenceTolerance, $"unpatched logits [{string.Join(", ", reference.Shape)}] vs {reference.Source}");
    }

    static CheckResult ResidualIdentities(HookedTransformer model, PromptPair prompts)
    {
        var c = model.Config;
        var (_, cache) = model.RunWithCache(prompts.Clean, n => n.EndsWith("hook_resid_pre") || n.EndsWith("hook_resid_mid")
            || n.EndsWith("hook_resid_post") || n.EndsWith("hook_attn_out") || n.EndsWith("hook_mlp_out"));
        using (cache)
        {
            double worst = 0;
            for (int l = 0; l < c.NLayers; l++)
            {
                var pre = cache[HookNames.ResidPre[l]];
                var attn = cache[HookNames.AttnOut[l]];
                var post = cache[HookNames.ResidPost[l]];
                if (!c.HasMlp) worst = Math.Max(worst, MaxDiff(post, pre.Plus(attn)));
                else if (c.ParallelAttnMlp) worst = Math.Max(worst, MaxDiff(post, pre.Plus(attn).Plus(cache[HookNames.MlpOut[l]])));
                else
                {
                    var mid = cache[HookNames.ResidMid[l]];
                    worst = Math.Max(worst, MaxDiff(mid, pre.Plus(attn)));
                    worst = Math.Max(worst, MaxDiff(post, mid.Plus(cache[HookNames.MlpOut[l]])));
                }
                if (l + 1 < c.NLayers) worst = Math.Max(worst, MaxDiff(cache[HookNames.ResidPre[l + 1]], post));
            }
            string form = !c.HasMlp ? "resid_post = resid_pre + attn_out"
                : c.ParallelAttnMlp ? "resid_post = resid_pre + attn_out + mlp_out (parallel block)"
                : "resid_mid = resid_pre + attn_out, resid_post = resid_mid + mlp_out";
            return Verdict("residual-identities", worst, 1e-5, $"{form}, resid_pre(l+1) = resid_post(l), {c.NLayers} layers");
        }
    }

    static CheckResult HeadResultsSum(HookedTransformer model, PromptPair prompts)
    {
        // Per-head results come from a run that hooks them (per-head product); attn_out from a run that does not
        // (one fused product over all heads), so the check compares two different computations.
        var c = model.Config;
        var (_, results) = model.RunWithCache(prompts.Clean, n => n.EndsWith("attn.hook_result"));
        var (_, outs) = model.RunWithCache(prompts.Clean, n => n.EndsWith("hook_attn_out"));
        using (results)
        using (outs)
        {
            double worst = 0;
            for (int l = 0; l < c.NLayers; l++)
            {
                var summed = results[HookNames.Result[l]].sum(dim: 2).Plus(model.blocks[l].attn.b_O); // [B, T, H, D] -> [B, T, D]
                worst = Math.Max(worst, MaxDiff(outs[HookNames.AttnOut[l]], summed));
            }
            return Verdict("head-results-sum", worst, ReferenceTolerance, $"sum over heads of hook_result + b_O = hook_attn_out, {c.NLayers} layers x {c.NHeads} heads");
        }
    }

    static CheckResult HooksPerCall(HookedTransformer model, PromptPair prompts)
    {
        const string name = "hooks-per-call";
        string point = HookNames.ResidPost[0];
        var clean = model.Forward(prompts.Clean);
        var hooks = new HookSet().Replace(point, t => zeros_like(t));
        double effect = MaxDiff(model.Forward(prompts.Clean, hooks), clean);
        double after = MaxDiff(model.Forward(prompts.Clean), clean);
        double scoped;
        using (model.AttachHooks(hooks)) scoped = MaxDiff(model.Forward(prompts.Clean), clean);
        double afterScope = MaxDiff(model.Forward(prompts.Clean), clean);
        string detail = $"zeroing {point} changed the logits by {effect:G3} (attached scope: {scoped:G3}); afterwards the runs differ from the first by {Math.Max(after, afterScope):G3}";
        if (effect < 1e-3 || scoped < 1e-3)
            return new CheckResult(name, CheckOutcome.Fail, effect, 1e-6, "the replacement hook had no effect: " + detail);
        if (model.AttachedHookScopes != 0)
            return new CheckResult(name, CheckOutcome.Fail, null, 1e-6, $"{model.AttachedHookScopes} hook scope(s) still attached after disposal");
        return Verdict(name, Math.Max(after, afterScope), 1e-6, detail);
    }

    static CheckResult EmptyPatch(HookedTransformer model, PromptPair prompts)
    {
        var g = ComputationGraph.Factorized(model.Config);
        var clean = model.Forward(prompts.Clean);
        // Keep every edge (ablate the complement of the whole graph), ablate an empty circuit, and all-zero masks.
        double keepAll = MaxDiff(CircuitPatching.PatchedLogits(model, Circuit.All(g), new Methodology { Value = AblationValue.Resample }, prompts), clean);
        // Masks of an empty circuit, built and run directly: CircuitPatching refuses this no-op (NoOpPatchException) on purpose.
        using var emptyMasks = PatchMasks.ForCircuit(Circuit.Empty(g), new Methodology { Ablate = AblatedSet.Circuit, Positions = TokenPositions.All },
            prompts.SeqLen, device: model.Device);
        double ablateNothing = MaxDiff(Patcher.Run(model, emptyMasks, PatchValues.Zero, prompts.Clean), clean);
        using var zeros = PatchMasks.Filled(g, 0, device: model.Device);
        double zeroMasks = MaxDiff(Patcher.Run(model, zeros, PatchValues.Zero, prompts.Clean), clean);
        return Verdict("empty-patch-is-clean", Math.Max(keepAll, Math.Max(ablateNothing, zeroMasks)), 1e-5,
            $"keep all {g.EdgeCount} edges {keepAll:G3}, ablate an empty circuit {ablateNothing:G3}, all-zero masks {zeroMasks:G3}");
    }

    static CheckResult ResampleAll(HookedTransformer model, PromptPair prompts)
    {
        var corrupt = model.Forward(prompts.Corrupt);
        var meth = new Methodology { Value = AblationValue.Resample, Positions = TokenPositions.All };
        var f = ComputationGraph.Factorized(model.Config);
        double all = MaxDiff(CircuitPatching.PatchedLogits(model, Circuit.Empty(f), meth, prompts), corrupt);
        double specific = MaxDiff(CircuitPatching.PatchedLogits(model, Circuit.Empty(f), meth with { Positions = TokenPositions.Specific, NeverPatchedPrefix = 0 }, prompts), corrupt);
        var heads = ComputationGraph.Factorized(model.Config, separateQkv: false);
        double perHead = MaxDiff(CircuitPatching.PatchedLogits(model, Circuit.Empty(heads), meth with { Granularity = Granularity.Heads }, prompts), corrupt);
        var r = ComputationGraph.Residual(model.Config);
        double node = MaxDiff(CircuitPatching.PatchedLogits(model, Circuit.Empty(r), meth with { Component = Component.Node }, prompts), corrupt);
        return Verdict("resample-all-is-corrupt", new[] { all, specific, perHead, node }.Max(), ReferenceTolerance,
            $"resampling every edge vs the corrupt run: Q/K/V edges {all:G3}, per-position masks {specific:G3}, head edges {perHead:G3}, nodes {node:G3}");
    }

    static CheckResult NodeEqualsOutEdges(HookedTransformer model, PromptPair prompts)
    {
        const string name = "node-equals-out-edges";
        var f = ComputationGraph.Factorized(model.Config);
        var r = ComputationGraph.Residual(model.Config);
        // A fixed, spread-out set of heads: every other head, alternating by layer.
        var heads = r.Sources.Where(s => s.Kind == NodeKind.Head && (s.Block + s.Head) % 2 == 0).ToList();
        var clean = model.Forward(prompts.Clean);
        double worst = 0, smallestEffect = double.PositiveInfinity;
        foreach (var value in new[] { AblationValue.Resample, AblationValue.Zero })
        {
            using var nodeMasks = PatchMasks.ForEdges(r, heads.Select(h => new CircuitEdge(r.EdgesFrom(h).Single(), null)), prompts.SeqLen, device: model.Device);
            using var edgeMasks = PatchMasks.ForEdges(f, heads.SelectMany(h => f.EdgesFrom(f.Source(h.Name))).Select(e => new CircuitEdge(e, null)), prompts.SeqLen, device: model.Device);
            var nodeRun = Patcher.Run(model, nodeMasks, PatchValues.Compute(model, r, value, PatchDirection.AblateClean, prompts), prompts.Clean);
            var edgeRun = Patcher.Run(model, edgeMasks, PatchValues.Compute(model, f, value, PatchDirection.AblateClean, prompts), prompts.Clean);
            worst = Math.Max(worst, MaxDiff(nodeRun, edgeRun));
            smallestEffect = Math.Min(smallestEffect, MaxDiff(nodeRun, clean));
        }
        string detail = $"{heads.Count} heads ablated (resample and zero) as nodes vs all their out-edges; the ablation moved the logits by at least {smallestEffect:G3}";
        if (heads.Count > 0 && smallestEffect < 1e-3)
            return new CheckResult(name, CheckOutcome.Fail, worst, ReferenceTolerance, "the ablation changed nothing: " + detail);
        return Verdict(name, worst, ReferenceTolerance, detail);
    }

    static CheckResult Float32Matmul(Device device)
    {
        const string name = "float32-matmul";
        var generator = new Generator(5, device: CPU);
        var a = randn(new long[] { 512, 1024 }, generator: generator);
        var b = randn(new long[] { 1024, 512 }, generator: generator);
        var exact = a.to(ScalarType.Float64).matmul(b.to(ScalarType.Float64));
        var product = a.to(device).matmul(b.to(device)).cpu().to(ScalarType.Float64);
        double relative = (product - exact).abs().max().item<double>() / exact.abs().max().item<double>();
        bool tf32Asked = device.type == DeviceType.CUDA && Devices.AllowTf32;
        string flag = Devices.Tf32InEffect is bool f ? $"; libtorch reports allow_tf32 = {f.ToString().ToLowerInvariant()}" : "";
        if (tf32Asked)
            return new CheckResult(name, CheckOutcome.Pass, relative, Float32MatmulTolerance,
                $"TF32 allowed (--allow-tf32): relative error {relative:G3} of a [512x1024]x[1024x512] product, " +
                $"{(relative > Float32MatmulTolerance ? "TF32 in use" : "no TF32 seen (card without TF32?)")}{flag}");
        return Verdict(name, relative, Float32MatmulTolerance,
            $"relative error of a [512x1024]x[1024x512] float32 product vs float64 on {device.type.ToString().ToLowerInvariant()} (TF32 would show ~1e-4 or more){flag}");
    }
}
