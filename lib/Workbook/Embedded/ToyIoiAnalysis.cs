using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>How well a model does IOI on a set of prompts, read at the end position.</summary>
/// <param name="Accuracy">Fraction of prompts whose top prediction over the whole vocabulary is the indirect object.</param>
/// <param name="IoAboveSubject">Fraction of prompts with logit(IO) &gt; logit(S).</param>
/// <param name="MeanLogitDiff">Mean over prompts of logit(IO) − logit(S).</param>
public sealed record IoiScore(int Prompts, double Accuracy, double IoAboveSubject, double MeanLogitDiff);

/// <summary>
/// The effect of mean-ablating one head's output (<c>blocks.{l}.attn.hook_result</c>, replaced by its mean over the
/// ABC-corrupt prompts of the same template, position by position), as the drop in mean logit difference
/// (clean − ablated, in logits): at every position, and at each IOI position alone. <see cref="ActsAt"/> is the IOI
/// position where ablating it matters most (null when the remaining positions matter more than any single label);
/// <see cref="AttendsTo"/> is where the head looks from there on clean prompts, with its mean attention weight.
/// </summary>
public sealed record HeadEffect(
    int Layer, int Head,
    double AllPositions, double AtIndirectObject, double AtSubject1, double AtSubject1Plus1, double AtSubject2, double AtEnd, double AtOtherPositions,
    IoiPosition? ActsAt, IoiPosition? AttendsTo, double AttentionWeight)
{
    public string Name => $"A{Layer}.{Head}";

    public double At(IoiPosition p) => p switch
    {
        IoiPosition.IndirectObject => AtIndirectObject,
        IoiPosition.Subject1 => AtSubject1,
        IoiPosition.Subject1Plus1 => AtSubject1Plus1,
        IoiPosition.Subject2 => AtSubject2,
        IoiPosition.End => AtEnd,
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };
}

/// <summary>A circuit head and the IOI position it is kept at (node circuit, as in the IOI paper's head classes).</summary>
public sealed record IoiCircuitHead(int Layer, int Head, IoiPosition Position)
{
    /// <summary>The AutoCircuit node name, e.g. "A1.3".</summary>
    public string Name => $"A{Layer}.{Head}";
}

/// <summary>
/// Evaluation and head-ablation analysis of an IOI model, with hooks on <c>hook_result</c> only (independent of the
/// patching engine). Prompts are grouped by template and name order, which share length and positions.
/// </summary>
public static class ToyIoiAnalysis
{
    /// <summary>
    /// Chooses which head outputs to mean-ablate in a group of prompts: a [seq, heads] boolean mask per layer
    /// (true = ablate), or null to leave the layer alone.
    /// </summary>
    public delegate Tensor? AblationMask(int layer, int sequenceLength, IoiPositions positions);

    static readonly IoiPosition[] Labels = Enum.GetValues<IoiPosition>();

    sealed class PromptGroup : IDisposable
    {
        public required IoiPositions Positions { get; init; }
        public required Tensor Clean { get; init; }
        public required Tensor Corrupt { get; init; }
        public required long[] Answers { get; init; }
        public required long[] Wrong { get; init; }
        public Tensor[]? MeanResults;   // per layer [T, H, D]: mean over the group's corrupt prompts
        public int Length => (int)Clean.shape[1];

        public void Dispose()
        {
            Clean.Dispose();
            Corrupt.Dispose();
            if (MeanResults != null) foreach (var t in MeanResults) t.Dispose();
        }
    }

    static List<PromptGroup> Group(HookedTransformer model, IReadOnlyList<IoiPromptPair> prompts)
    {
        if (prompts.Count == 0) throw new ArgumentException("No prompts to evaluate.");
        var groups = new List<PromptGroup>();
        foreach (var g in prompts.GroupBy(p => (p.Template, p.Order)).OrderBy(g => g.Key.Template).ThenBy(g => g.Key.Order))
        {
            var list = g.ToList();
            var positions = list[0].Positions;
            if (list.Any(p => p.Positions != positions || p.CleanTokens.Length != list[0].CleanTokens.Length))
                throw new ArgumentException($"Prompts of template {g.Key.Template} ({g.Key.Order}) do not share positions: names must be single tokens.");
            int T = list[0].CleanTokens.Length;
            groups.Add(new PromptGroup
            {
                Positions = positions,
                Clean = tensor(list.SelectMany(p => p.CleanTokens).Select(x => (long)x).ToArray()).view(list.Count, T).DetachFromDisposeScope(),
                Corrupt = tensor(list.SelectMany(p => p.CorruptTokens).Select(x => (long)x).ToArray()).view(list.Count, T).DetachFromDisposeScope(),
                Answers = list.Select(p => (long)p.AnswerToken).ToArray(),
                Wrong = list.Select(p => (long)p.WrongAnswerToken).ToArray(),
            });
        }
        return groups;
    }

    static void ComputeMeans(HookedTransformer model, PromptGroup g)
    {
        if (g.MeanResults != null) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var names = Enumerable.Range(0, model.Config.NLayers).Select(l => HookNames.Result[l]).ToHashSet();
        var (logits, cache) = model.RunWithCache(g.Corrupt, names.Contains);
        using (cache)
            g.MeanResults = Enumerable.Range(0, model.Config.NLayers)
                .Select(l => cache[HookNames.Result[l]].mean(new long[] { 0 }).DetachFromDisposeScope()).ToArray();
        logits.Dispose();
    }

    /// <summary>Per-prompt (answer logit − wrong logit, top-1 correct) at the end position, with the given heads mean-ablated.</summary>
    static (double[] Diffs, bool[] Correct) Run(HookedTransformer model, PromptGroup g, AblationMask? ablation)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        HookSet? hooks = null;
        if (ablation != null)
        {
            ComputeMeans(model, g);
            hooks = new HookSet();
            for (int l = 0; l < model.Config.NLayers; l++)
            {
                var mask = ablation(l, g.Length, g.Positions);
                if (mask is null) continue;
                var m = mask.to(ScalarType.Bool).view(1, g.Length, model.Config.NHeads, 1);
                var mean = g.MeanResults![l].unsqueeze(0);
                hooks.Replace(HookNames.Result[l], x => where(m, mean, x));
            }
        }
        var logits = model.Forward(g.Clean, hooks)[.., g.Positions.End];              // [n, V]
        var answers = tensor(g.Answers).unsqueeze(1);
        var wrong = tensor(g.Wrong).unsqueeze(1);
        var diffs = (logits.gather(1, answers) - logits.gather(1, wrong)).squeeze(1).to(ScalarType.Float64);
        var correct = logits.argmax(1).eq(answers.squeeze(1));
        return (diffs.data<double>().ToArray(), correct.data<bool>().ToArray());
    }

    /// <summary>Scores <paramref name="model"/> on <paramref name="prompts"/>, optionally with some head outputs mean-ablated.</summary>
    public static IoiScore Evaluate(HookedTransformer model, IReadOnlyList<IoiPromptPair> prompts, AblationMask? ablation = null)
    {
        var groups = Group(model, prompts);
        try
        {
            return Score(model, groups, ablation);
        }
        finally
        {
            foreach (var g in groups) g.Dispose();
        }
    }

    static IoiScore Score(HookedTransformer model, List<PromptGroup> groups, AblationMask? ablation)
    {
        var diffs = new List<double>();
        var correct = new List<bool>();
        foreach (var g in groups)
        {
            var (d, c) = Run(model, g, ablation);
            diffs.AddRange(d);
            correct.AddRange(c);
        }
        return new IoiScore(diffs.Count, correct.Average(x => x ? 1.0 : 0.0), diffs.Average(x => x > 0 ? 1.0 : 0.0), diffs.Average());
    }

    /// <summary>A mask that ablates head (<paramref name="layer"/>, <paramref name="head"/>) at the positions <paramref name="where"/> selects.</summary>
    public static AblationMask OneHead(int layer, int head, int heads, Func<int, IoiPositions, bool> where) => (l, T, pos) =>
    {
        if (l != layer) return null;
        var m = new bool[T * heads];
        for (int t = 0; t < T; t++) m[t * heads + head] = where(t, pos);
        return tensor(m).view(T, heads);
    };

    /// <summary>
    /// Keeps each circuit head at its position and mean-ablates every other head output (and circuit heads at other
    /// positions), the node-circuit convention of the paper (spec C.1).
    /// </summary>
    public static AblationMask KeepOnly(IReadOnlyCollection<IoiCircuitHead> circuit, int heads) => (l, T, pos) =>
    {
        var m = new bool[T * heads];
        Array.Fill(m, true);
        foreach (var c in circuit.Where(c => c.Layer == l)) m[pos[c.Position] * heads + c.Head] = false;
        return tensor(m).view(T, heads);
    };

    /// <summary>The effect of mean-ablating each head, everywhere and at each IOI position, with where it attends.</summary>
    public static IReadOnlyList<HeadEffect> HeadEffects(HookedTransformer model, IReadOnlyList<IoiPromptPair> prompts, IProgress<string>? log = null)
    {
        var c = model.Config;
        var groups = Group(model, prompts);
        try
        {
            double clean = Score(model, groups, null).MeanLogitDiff;
            var attention = MeanAttention(model, groups);
            var effects = new List<HeadEffect>();
            for (int l = 0; l < c.NLayers; l++)
                for (int h = 0; h < c.NHeads; h++)
                {
                    double Drop(Func<int, IoiPositions, bool> where) => clean - Score(model, groups, OneHead(l, h, c.NHeads, where)).MeanLogitDiff;
                    double all = Drop((_, _) => true);
                    var at = Labels.ToDictionary(p => p, p => Drop((t, pos) => t == pos[p]));
                    double other = Drop((t, pos) => !Labels.Any(p => pos[p] == t));
                    var strongest = Labels.OrderByDescending(p => Math.Abs(at[p])).First();
                    IoiPosition? actsAt = Math.Abs(at[strongest]) >= Math.Abs(other) ? strongest : null;
                    IoiPosition? attendsTo = null;
                    double weight = 0;
                    if (actsAt is IoiPosition from)
                    {
                        // Labelled positions, then everything else; a head looking mostly elsewhere gets no label.
                        var row = attention[(l, h, from)];
                        int best = Enumerable.Range(0, row.Length).MaxBy(i => row[i]);
                        (attendsTo, weight) = (best < Labels.Length ? Labels[best] : null, row[best]);
                    }
                    log?.Report($"A{l}.{h}: ablated everywhere {all:F3}, at end {at[IoiPosition.End]:F3}, at S2 {at[IoiPosition.Subject2]:F3}");
                    effects.Add(new HeadEffect(l, h, all, at[IoiPosition.IndirectObject], at[IoiPosition.Subject1], at[IoiPosition.Subject1Plus1],
                        at[IoiPosition.Subject2], at[IoiPosition.End], other, actsAt, attendsTo, weight));
                }
            return effects;
        }
        finally
        {
            foreach (var g in groups) g.Dispose();
        }
    }

    /// <summary>
    /// Mean attention on clean prompts from each IOI position to each IOI position, per head: a row per (layer, head,
    /// from) with one entry per label and a last entry for all other positions together.
    /// </summary>
    static Dictionary<(int Layer, int Head, IoiPosition From), double[]> MeanAttention(HookedTransformer model, List<PromptGroup> groups)
    {
        var c = model.Config;
        var sums = new Dictionary<(int, int, IoiPosition), double[]>();
        int total = 0;
        var names = Enumerable.Range(0, c.NLayers).Select(l => HookNames.Pattern[l]).ToHashSet();
        foreach (var g in groups)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var (logits, cache) = model.RunWithCache(g.Clean, names.Contains);
            using (cache)
            {
                for (int l = 0; l < c.NLayers; l++)
                {
                    // [H, Tq, Tk] summed over prompts, copied out once.
                    var pattern = cache[HookNames.Pattern[l]].sum(dim: 0).to(ScalarType.Float64).contiguous();
                    var values = pattern.data<double>().ToArray();
                    int T = g.Length;
                    for (int h = 0; h < c.NHeads; h++)
                        foreach (var from in Labels)
                        {
                            if (!sums.TryGetValue((l, h, from), out var row)) sums[(l, h, from)] = row = new double[Labels.Length + 1];
                            int q = g.Positions[from];
                            double rowTotal = 0;
                            for (int k = 0; k < T; k++) rowTotal += values[(h * T + q) * T + k];
                            double labelled = 0;
                            for (int i = 0; i < Labels.Length; i++)
                            {
                                double w = values[(h * T + q) * T + g.Positions[Labels[i]]];
                                row[i] += w;
                                labelled += w;
                            }
                            row[Labels.Length] += rowTotal - labelled;
                        }
                }
                total += (int)g.Clean.shape[0];
            }
            logits.Dispose();
        }
        foreach (var row in sums.Values)
            for (int i = 0; i < row.Length; i++) row[i] /= total;
        return sums;
    }
}
