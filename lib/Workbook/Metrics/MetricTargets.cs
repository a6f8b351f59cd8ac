using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Metrics;

/// <summary>
/// What the metrics compare the outputs with, for a batch of prompts and P read positions: answer and wrong-answer
/// token ids [B, P, n] (language-model tasks repeat theirs at their single read position), or real-valued targets.
/// </summary>
public sealed record MetricTargets(long[,,]? Answers, long[,,]? WrongAnswers)
{
    public int Batch => Answers?.GetLength(0) ?? 0;

    /// <summary>Targets of prompts [start, start + count) of <paramref name="data"/> for <paramref name="readPositions"/> output positions.</summary>
    public static MetricTargets For(TokenizedDataset data, int start, int count, int readPositions)
    {
        if (data.AnswerIds is not null)
            return new MetricTargets(Expand(data.AnswerIds, start, count, readPositions), Expand(data.WrongAnswerIds!, start, count, readPositions));
        if (data.TargetsAreTokenIds)
            return new MetricTargets(PerPosition(data.AnswerValues!, start, count, readPositions), PerPosition(data.WrongAnswerValues!, start, count, readPositions));
        return new MetricTargets(null, null);
    }

    static long[,,] Expand(IReadOnlyList<int[]> ids, int start, int count, int positions)
    {
        int n = ids[start].Length;
        var result = new long[count, positions, n];
        for (int b = 0; b < count; b++)
        {
            if (ids[start + b].Length != n) throw new ArgumentException($"Prompt {start + b} has {ids[start + b].Length} answers but prompt {start} has {n}; a batch needs equal counts.");
            for (int p = 0; p < positions; p++)
                for (int k = 0; k < n; k++) result[b, p, k] = ids[start + b][k];
        }
        return result;
    }

    static long[,,] PerPosition(IReadOnlyList<double[][]> values, int start, int count, int positions)
    {
        if (values[start].Length != positions)
            throw new ArgumentException($"Prompt {start} has targets for {values[start].Length} positions but the task reads {positions}.");
        int n = values[start][0].Length;
        var result = new long[count, positions, n];
        for (int b = 0; b < count; b++)
            for (int p = 0; p < positions; p++)
                for (int k = 0; k < n; k++) result[b, p, k] = (long)values[start + b][p][k];
        return result;
    }

    /// <summary>Answer ids [B, P, n] on <paramref name="device"/>.</summary>
    public Tensor AnswerTensor(Device device) => tensor(Answers ?? throw new InvalidOperationException("The task has no token answers."), device: device);
    /// <summary>Wrong-answer ids [B, P, n] on <paramref name="device"/>.</summary>
    public Tensor WrongTensor(Device device) => tensor(WrongAnswers ?? throw new InvalidOperationException("The task has no wrong answers."), device: device);
}
