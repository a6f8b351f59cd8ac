using Workbook.Tasks;

namespace Workbook.Evaluation;

/// <summary>
/// One work unit of an evaluation: one methodology on one batch of one dataset part. Its rows depend only on that
/// batch, the part's dataset means and the part's unpatched outputs, never on another unit, so units can run in any
/// process (a shard) and their rows, put back in unit order, are exactly the rows of the whole evaluation.
/// </summary>
public sealed record EvaluationUnit(int Index, int Part, int Methodology, int Batch, int FirstPrompt, int Prompts);

/// <summary>The units of an evaluation in its canonical order: part, then methodology, then batch (the order of its rows).</summary>
public static class EvaluationUnits
{
    public const string Description = "one unit per methodology, dataset part and batch of prompts";

    public static IReadOnlyList<EvaluationUnit> Enumerate(IReadOnlyList<TokenizedDataset> parts, int methodologies, int batchSize) =>
        Enumerate(parts.Select(p => p.Count).ToArray(), methodologies, batchSize);

    /// <summary>The units for parts of <paramref name="partSizes"/> prompts each.</summary>
    public static IReadOnlyList<EvaluationUnit> Enumerate(IReadOnlyList<int> partSizes, int methodologies, int batchSize)
    {
        if (batchSize < 1) throw new ArgumentException($"The batch size must be at least 1, got {batchSize}.");
        var units = new List<EvaluationUnit>();
        for (int p = 0; p < partSizes.Count; p++)
            for (int m = 0; m < methodologies; m++)
                for (int b = 0, start = 0; start < partSizes[p]; b++, start += batchSize)
                    units.Add(new EvaluationUnit(units.Count, p, m, b, start, Math.Min(batchSize, partSizes[p] - start)));
        return units;
    }
}
