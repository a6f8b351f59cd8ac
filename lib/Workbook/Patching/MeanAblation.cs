using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>The prompts a mean ablation averages over.</summary>
public enum MeanOver
{
    /// <summary>The dataset part's clean prompts (AutoCircuit TOKENWISE_MEAN_CLEAN).</summary>
    Clean,
    /// <summary>The dataset part's corrupt prompts (TOKENWISE_MEAN_CORRUPT; the paper's "Mean (ABC)" for IOI).</summary>
    Corrupt,
    /// <summary>The dataset part's clean and corrupt prompts together (TOKENWISE_MEAN_CLEAN_AND_CORRUPT).</summary>
    CleanAndCorrupt,
    /// <summary>The current batch's paired prompts (BATCH_TOKENWISE_MEAN / BATCH_ALL_TOK_MEAN).</summary>
    Batch,
}

/// <summary>
/// Mean ablation: each source takes its mean output over a set of prompts, per position (<see cref="Tokenwise"/>, the
/// paper's default) or over all positions too. Dataset means (<c>mean-clean</c>, <c>mean-corrupt</c>, <c>mean-both</c>)
/// average a whole dataset part and ignore the direction; the batch mean (<c>mean-batch</c>) averages the current
/// batch's paired prompts, which is what the reference scenario files call <c>mean_corrupt</c>.
/// </summary>
public sealed record MeanAblation(MeanOver Over, bool Tokenwise = true) : AblationValue(
    $"mean-{Word(Over)}{(Tokenwise ? "" : AllTokensSuffix)}", LegendOf(Over, Tokenwise),
    $"{(Tokenwise ? "per-position" : "all-position")} mean of the source's output over {Prompts(Over)}",
    Over == MeanOver.Batch ? AblationNeeds.PairedPrompts : AblationNeeds.DatasetMeans)
{
    public override PatchValues Compute(AblationContext context)
    {
        if (Over == MeanOver.Batch)
        {
            EnsureEnoughPrompts(context.Batch.BatchSize, "This batch"); // before the run
            return FromPairedRecording(context.RecordSources(context.PairedPrompts));
        }
        var means = context.Means ?? throw new ArgumentException($"Mean ablation over {Over} prompts needs a MeanReference computed from the task's prompts.");
        if (means.Graph.View != context.Graph.View || means.Graph.Sources.Count != context.Graph.Sources.Count)
            throw new ArgumentException("The MeanReference was computed for a different graph.");
        EnsureEnoughPrompts(means.PromptCount, "The mean reference");
        var m = means.For(Over);
        if (Tokenwise && m.shape[2] != context.Batch.SeqLen)
            throw new ArgumentException($"Token-wise means were computed for {m.shape[2]} positions but the batch has {context.Batch.SeqLen}.");
        return new PatchValues(Tokenwise ? m.alias() : m.mean(new long[] { 2 }, keepdim: true));
    }

    /// <summary>The prompt sides a dataset mean over <paramref name="over"/> averages.</summary>
    public static MeanSides SidesOf(MeanOver over) => over switch
    {
        MeanOver.Clean => MeanSides.Clean,
        MeanOver.Corrupt => MeanSides.Corrupt,
        MeanOver.CleanAndCorrupt => MeanSides.CleanAndCorrupt,
        _ => throw new ArgumentException($"{over} means are computed per batch, not from a reference set."),
    };

    /// <summary>The prompt sides the dataset means among <paramref name="values"/> average (none when none is a dataset mean).</summary>
    public static MeanSides SidesFor(IEnumerable<AblationValue> values) => values.OfType<MeanAblation>()
        .Where(m => m.Over != MeanOver.Batch).Aggregate((MeanSides)0, (sides, m) => sides | SidesOf(m.Over));

    /// <summary>The batch mean is; dataset means come from a <see cref="MeanReference"/> instead.</summary>
    public override bool ComputedFromPairedRecording => Over == MeanOver.Batch;

    /// <summary>The batch mean: the recording averaged over the batch (and over positions unless <see cref="Tokenwise"/>).</summary>
    public override PatchValues FromPairedRecording(Tensor pairedSources)
    {
        if (Over != MeanOver.Batch) return base.FromPairedRecording(pairedSources);
        EnsureEnoughPrompts(pairedSources.shape[1], "This batch");
        return new PatchValues(Tokenwise ? pairedSources.mean(new long[] { 1 }, keepdim: true) : pairedSources.mean(new long[] { 1, 2 }, keepdim: true));
    }

    public override void CheckPrompts(string part, int prompts, int batchSize)
    {
        if (Over != MeanOver.Batch)
        {
            EnsureEnoughPrompts(prompts, $"'{part}' ({prompts} prompts)");
            return;
        }
        int smallestBatch = prompts % batchSize is var rest && rest > 0 ? Math.Min(rest, batchSize) : Math.Min(prompts, batchSize);
        EnsureEnoughPrompts(smallestBatch, $"'{part}' ({prompts} prompts in batches of {batchSize}, the smallest holding {smallestBatch})");
    }

    /// <summary>Throws <see cref="TooFewPromptsForMeanException"/> when the mean would average fewer than <see cref="PatchingGuards.MinimumPromptsForMean"/> prompts.</summary>
    void EnsureEnoughPrompts(long prompts, string where)
    {
        if (prompts >= PatchingGuards.MinimumPromptsForMean) return;
        string what = Over == MeanOver.Batch ? "batch" : "dataset";
        throw new TooFewPromptsForMeanException(
            $"{where}: {Label} ablation averages over the {what}'s prompts, but there {(prompts == 1 ? "is 1 prompt" : $"are {prompts} prompts")}; " +
            $"a mean needs at least {PatchingGuards.MinimumPromptsForMean} (over one prompt a token-wise mean is that prompt itself: resample ablation, or no patch at all). " +
            (Over == MeanOver.Batch ? "Choose another batch size or number of prompts." : "Evaluate more prompts."));
    }

    const string AllTokensSuffix = "-alltok";

    static string LegendOf(MeanOver over, bool tokenwise) => over switch
    {
        MeanOver.Corrupt => "Mean (ABC)",
        MeanOver.Clean => "Mean (clean)",
        MeanOver.CleanAndCorrupt => "Mean (clean+corrupt)",
        _ => "Mean (batch)",
    } + (tokenwise ? "" : ", all tokens");

    static string Word(MeanOver over) => over switch
    {
        MeanOver.Clean => "clean",
        MeanOver.Corrupt => "corrupt",
        MeanOver.CleanAndCorrupt => "both",
        _ => "batch",
    };

    static string Prompts(MeanOver over) => over switch
    {
        MeanOver.Clean => "the dataset part's clean prompts",
        MeanOver.Corrupt => "the dataset part's corrupt prompts (IOI: the paper's Mean (ABC))",
        MeanOver.CleanAndCorrupt => "the dataset part's clean and corrupt prompts",
        _ => "the current batch's paired prompts (the corrupt ones when ablating clean; the reference scenarios' mean_corrupt)",
    };

    /// <summary>One entry per prompt set, each also spelled with <c>-alltok</c> for a mean over all positions.</summary>
    internal static IEnumerable<VocabularyEntry<AblationValue>> Entries => Enum.GetValues<MeanOver>().Select(over =>
    {
        string word = $"mean-{Word(over)}";
        return new VocabularyEntry<AblationValue>($"{word}[{AllTokensSuffix}]",
            $"mean of the source's output over {Prompts(over)}; per position, or over all positions with {AllTokensSuffix}",
            text => text == word ? new MeanAblation(over) : text == word + AllTokensSuffix ? new MeanAblation(over, false) : null,
            new[] { new MeanAblation(over), new MeanAblation(over, false) });
    });
}
