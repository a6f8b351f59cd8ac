using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// Indices along dimension 0 as runs of consecutive ones, for reading rows through narrow views instead of gathering
/// them. On this project's CPU, summing 118 of 157 rows of a [157, 50, 15, 768] float tensor (GPT-2's replaced heads in
/// a 50-prompt resample recording) block by block took 0.45 s for 12 blocks by index_select then sum, 0.14 s by narrow views.
/// </summary>
internal sealed class RowRuns
{
    readonly (long Start, long Length)[] _runs;

    RowRuns((long Start, long Length)[] runs) => _runs = runs;

    /// <summary>The runs of <paramref name="indices"/>, which must be ascending and distinct.</summary>
    public static RowRuns Of(IReadOnlyList<long> indices)
    {
        var runs = new List<(long, long)>();
        for (int i = 0; i < indices.Count;)
        {
            if (i > 0 && indices[i] <= indices[i - 1]) throw new ArgumentException("Row indices must be ascending and distinct.", nameof(indices));
            int j = i;
            while (j + 1 < indices.Count && indices[j + 1] == indices[j] + 1) j++;
            runs.Add((indices[i], j - i + 1));
            i = j + 1;
        }
        return new RowRuns(runs.ToArray());
    }

    public int Count => _runs.Length;

    /// <summary>Σ over the rows of <paramref name="t"/> [rows, ...] at these indices: a fresh tensor shaped like one row.</summary>
    public Tensor Sum(Tensor t)
    {
        if (_runs.Length == 0) throw new InvalidOperationException("No rows to sum.");
        Tensor? total = null;
        foreach (var (start, length) in _runs)
        {
            using var run = t.narrow(0, start, length);
            if (total is null) total = run.sum(dim: 0);
            else
            {
                using var part = run.sum(dim: 0);
                total.add_(part);
            }
        }
        return total!;
    }
}
