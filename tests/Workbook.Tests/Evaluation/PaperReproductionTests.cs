using System.Text.RegularExpressions;
using Workbook.Checkpoints;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tests.Support;

namespace Workbook.Tests.Evaluation;

/// <summary>
/// The paper's exact IOI validation targets (spec A.2, AutoCircuit's test_ioi_faithfulness_exact_repro), opt-in because
/// they need GPT-2's real weights: set <c>WORKBOOK_MODELS</c> to a hub cache holding <c>gpt2</c> (after
/// <c>workbook models pull gpt2</c>) and run <c>dotnet test --filter Category=RealWeights</c>. Node circuit, token-specific,
/// token-wise mean over the file's first 50 corrupt (ABC) prompts, ratio of means, tolerance 0.01, for all 15
/// templates × ABBA/BABA × with and without BOS.
/// </summary>
[Trait("Category", "RealWeights")]
public class PaperReproductionTests
{
    static LoadedModel? _gpt2;

    static LoadedModel Gpt2() => _gpt2 ??= RealModels.LoadOrSkip("gpt2");

    /// <summary>Spec A.2's table: template → (ABBA no-BOS, BABA no-BOS, ABBA +BOS, BABA +BOS).</summary>
    static Dictionary<int, double[]> Targets()
    {
        string spec = TestFiles.ReadPaperReference();
        int start = spec.IndexOf("| template | ABBA no-BOS | BABA no-BOS | ABBA +BOS | BABA +BOS |", StringComparison.Ordinal);
        return Regex.Matches(spec[start..(start + 2000)], @"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", RegexOptions.Multiline)
            .ToDictionary(m => int.Parse(m.Groups[1].Value), m => Enumerable.Range(2, 4).Select(g => double.Parse(m.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
    }

    public static IEnumerable<object[]> Cases() =>
        from t in Enumerable.Range(0, 15) from bos in new[] { false, true } select new object[] { t, bos };

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void IoiNodeCircuitFaithfulnessMatchesTheExactReproduction(int template, bool bos)
    {
        var loaded = Gpt2();
        var model = loaded.Model;
        var targets = Targets()[template];
        var task = KnownTasks.Ioi with { PrependBos = bos };
        var tokenizer = loaded.RequireTokenizer();
        var parts = new[] { IoiOrder.ABBA, IoiOrder.BABA }.Select(order => IoiGenerator.Generate(order, template, 50, seed: 0, tokenizer)).ToArray();
        var methodology = new Methodology
        {
            Component = Component.Node, Positions = TokenPositions.Specific, Value = AblationValue.Mean(MeanOver.Corrupt), Ablate = AblatedSet.Complement,
        };
        var rows = Evaluator.Run(new EvaluationRequest
        {
            Model = model, Task = task, Parts = task.Tokenize(parts, tokenizer), Circuit = CircuitChoice.Parse("ioi-nodes"),
            Methodologies = new[] { methodology }, Metrics = new[] { MetricKind.LogitDiffRecoveredOfMeans }, BatchSize = 50,
        });
        double abba = rows.Where(r => r.Part.StartsWith("ABBA", StringComparison.Ordinal)).Average(r => r.Value);
        double baba = rows.Where(r => r.Part.StartsWith("BABA", StringComparison.Ordinal)).Average(r => r.Value);
        Assert.Equal(targets[bos ? 2 : 0], abba, 0.01);
        Assert.Equal(targets[bos ? 3 : 1], baba, 0.01);
    }
}
