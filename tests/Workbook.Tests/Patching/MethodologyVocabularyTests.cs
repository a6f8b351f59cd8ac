using CsCheck;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Tests.Evaluation;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>
/// One spelling of a methodology: <see cref="Methodology.Label"/> and <see cref="Methodology.Parse"/> are inverses over
/// every combination of choices, and the fixtures' old spellings map onto the vocabulary in one place.
/// </summary>
public class MethodologyVocabularyTests
{
    /// <summary>Every combination of the six choices, with every example value of the vocabulary and a few prefixes.</summary>
    public static IEnumerable<Methodology> AllCombinations() =>
        from component in Enum.GetValues<Component>()
        from granularity in Enum.GetValues<Granularity>()
        from value in AblationValue.Vocabulary.Examples
        from positions in Enum.GetValues<TokenPositions>()
        from direction in Enum.GetValues<PatchDirection>()
        from set in Enum.GetValues<AblatedSet>()
        from prefix in new int?[] { null, 0, 11 }
        select new Methodology
        {
            Component = component, Granularity = granularity, Value = value, Positions = positions, Direction = direction, Ablate = set,
            NeverPatchedPrefix = prefix,
        };

    [Fact]
    public void LabelAndParseAreInversesOverEveryCombination()
    {
        var labels = new HashSet<string>(StringComparer.Ordinal);
        int count = 0;
        foreach (var m in AllCombinations())
        {
            count++;
            Assert.Equal(m, Methodology.Parse(m.Label));
            Assert.Equal(m, Methodology.Parse(m.Label.ToUpperInvariant()));
            Assert.True(labels.Add(m.Label), $"two methodologies share the label {m.Label}");
        }
        Assert.Equal(2 * 2 * AblationValue.Vocabulary.Examples.Count * 2 * 2 * 2 * 3, count);
    }

    [Fact]
    public void NoiseLabelsRoundTripForAnyScaleAndSeed()
    {
        Workbook.Tests.Reliability.FuzzHarness.ForAll("noise labels round-trip", Gen.Select(Gen.Double[0, 1e6], Gen.Int[0, int.MaxValue]), 2000, c =>
        {
            var (scale, seed) = c;
            var value = AblationValue.Noise(scale, seed);
            Assert.Equal(value, AblationValue.Parse(value.Label));
            var m = new Methodology { Value = value };
            Assert.Equal(m, Methodology.Parse(m.Label));
        });
        Assert.Equal(AblationValue.Noise(3, 0), AblationValue.Parse("noise"));
        Assert.Equal(AblationValue.Noise(0.5, 0), AblationValue.Parse("noise-0.5"));
        Assert.Equal(AblationValue.Noise(3, 9), AblationValue.Parse("noise-seed9"));
        Assert.Equal("noise-0.5-seed7", AblationValue.Noise(0.5, 7).Label);
    }

    [Fact]
    public void TheLabelsOfExportsAreUnchanged()
    {
        // What CSV/JSON files and reports have always printed: the vocabulary must keep these spellings.
        Assert.Equal("edge/specific/resample/ablate-clean/complement", new Methodology().Label);
        Assert.Equal("node/all/mean-corrupt-alltok/restore-corrupt/circuit", new Methodology
        {
            Component = Component.Node, Positions = TokenPositions.All, Value = AblationValue.Mean(MeanOver.Corrupt, tokenwise: false),
            Direction = PatchDirection.RestoreCorrupt, Ablate = AblatedSet.Circuit,
        }.Label);
        Assert.Equal("edge/all/mean-both/ablate-clean/complement/heads", new Methodology
        {
            Granularity = Granularity.Heads, Positions = TokenPositions.All, Value = AblationValue.Mean(MeanOver.CleanAndCorrupt),
        }.Label);
        Assert.Equal(new[] { "resample", "zero", "mean-clean", "mean-corrupt", "mean-both", "mean-batch" },
            new[] { AblationValue.Resample, AblationValue.Zero, AblationValue.Mean(MeanOver.Clean), AblationValue.Mean(MeanOver.Corrupt),
                AblationValue.Mean(MeanOver.CleanAndCorrupt), AblationValue.Mean(MeanOver.Batch) }.Select(v => v.Label));
    }

    [Theory]
    [InlineData("edge/specific/resampel/ablate-clean/complement", "Did you mean 'resample'")]
    [InlineData("edge/specific/resample", "component/positions/value/direction/set")]
    [InlineData("edges/some/resample/ablate-clean/complement", "Unknown token positions 'some'. Use all or specific.")]
    [InlineData("edge/all/zero/ablate-clean/complement/heads/heads", "unexpected 'heads'")]
    [InlineData("edge/all/zero/ablate-clean/complement/prefix--1", "unexpected 'prefix--1'")]
    [InlineData("edge/all/noise--1/ablate-clean/complement", "Unknown ablation value 'noise--1'")]
    [InlineData("edge/all/noise-1-seed99999999999/ablate-clean/complement", "Unknown ablation value")]
    public void MalformedLabelsAreRefusedNamingThePart(string label, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Methodology.Parse(label));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void FixtureSpellingsMapOntoTheVocabulary()
    {
        // The reference files' mean_corrupt is the mean over their own (one batch of) corrupt prompts: mean-batch.
        Assert.Equal(new ScenarioPatch(AblationValue.Mean(MeanOver.Batch), PatchDirection.AblateClean), ScenarioPatch.FixtureSpellings["mean_corrupt"]);
        Assert.Equal(new ScenarioPatch(AblationValue.Resample, PatchDirection.RestoreCorrupt), ScenarioPatch.FixtureSpellings["clean"]);
        Assert.Null(ScenarioPatch.Parse("none", inputIsClean: true, "f"));
        // A vocabulary label takes its values from the prompts paired with the input.
        Assert.Equal(new ScenarioPatch(AblationValue.Noise(1, 2), PatchDirection.RestoreCorrupt), ScenarioPatch.Parse("noise-1-seed2", inputIsClean: false, "f"));
        Assert.Contains("mean_corrupt", Assert.Throws<FormatException>(() => ScenarioPatch.Parse("mean-corupt", true, "f")).Message);
    }

    [Fact]
    public void ScenarioFilesAcceptVocabularyLabelsAndTheirMeanCorruptIsTheBatchMean()
    {
        // In a scenario file the dataset is the file's one batch, so the dataset mean over its corrupt prompts (mean-corrupt)
        // and the batch mean (mean-batch, the fixtures' mean_corrupt) must give the same logits.
        var text = File.ReadAllText(TestFiles.Fixture("tiny-gpt2-scenarios.json"));
        var original = ScenarioFile.Parse(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)));
        var legacy = original.Scenarios.First(s => s.Patch == ScenarioPatch.FixtureSpellings["mean_corrupt"] && s.InputIsClean);
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        using var scope = NewDisposeScope();
        var expected = original.Run(model, legacy);
        foreach (var label in new[] { "mean-corrupt", "mean-batch" })
        {
            var renamed = legacy with { Patch = ScenarioPatch.Parse(label, legacy.InputIsClean, "test") };
            TensorAssert.Close(expected, original.Run(model, renamed), 1e-5, label); // float64 vs float32 means
        }
    }

    [Fact]
    public void DatasetAndBatchMeansDifferWhenAPartHasSeveralBatches()
    {
        // mean-corrupt averages the part's corrupt prompts, mean-batch each batch's: with 2 batches of 4 they differ,
        // with one batch of 8 they agree. This is why the labels keep the two apart.
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        var part = Workbook.Tasks.TokenizedDataset.Create(EvaluationTests.TokenDataset(8, 8), null, false, false);
        var graph = ComputationGraph.Factorized(model.Config);
        var circuit = CircuitChoice.Of(SymbolicCircuit.FromCircuit("half", Circuit.From(graph, graph.Edges.Where(e => e.Index % 2 == 0).Select(e => new CircuitEdge(e, null)))));
        double[] Values(string value, int batch) => Evaluator.Run(new EvaluationRequest
        {
            Model = model, Task = EvaluationTests.TokenTask, Parts = new[] { part }, Circuit = circuit, BatchSize = batch,
            Methodologies = new[] { Methodology.Parse($"edge/all/{value}/ablate-clean/complement") }, Metrics = new[] { MetricKind.Kl },
        }).Select(r => r.Value).ToArray();
        static double MaxDiff(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        // Dataset means are accumulated in float64, batch means in the model's float32: equal to rounding.
        Assert.True(MaxDiff(Values("mean-corrupt", 8), Values("mean-batch", 8)) < 1e-5);
        Assert.True(MaxDiff(Values("mean-corrupt", 4), Values("mean-batch", 4)) > 1e-3);
        Assert.True(MaxDiff(Values("mean-corrupt", 8), Values("mean-corrupt", 4)) < 1e-5);
    }
}
