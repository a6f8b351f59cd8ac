using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Workbook.Checkpoints;
using Workbook.Embedded;
using Workbook.Model;
using Workbook.Tests.Support;
using Xunit.Abstractions;

namespace Workbook.Tests.Embedded;

/// <summary>
/// Retraining the built-in toy models reproduces their committed weights byte for byte. A full retrain takes minutes per
/// model, so the default run trains the first <see cref="PrefixSteps"/> steps of each recipe (the same schedule, cut
/// short) and compares the SHA-256 of the weights file with the value recorded below; <c>WORKBOOK_RETRAIN=1</c> runs
/// the full recipes and compares the whole <c>model.safetensors</c> with the committed one. Both hold on the CPU and
/// libtorch build the checkpoints were trained with (libtorch-cpu 2.10 on x86-64); another CPU or build may round
/// differently.
/// </summary>
public class ToyRetrainingTests(ITestOutputHelper output)
{
    const int PrefixSteps = 8;

    /// <summary>
    /// SHA-256 of <c>model.safetensors</c> after the first <see cref="PrefixSteps"/> steps of each default recipe. Recorded
    /// from the training code when the committed checkpoints were trained (the full run behind WORKBOOK_RETRAIN=1 is
    /// what ties the recipe to the committed weights); a change here means the recipe or the training code changed,
    /// and the committed checkpoint must be retrained with it.
    /// </summary>
    static readonly Dictionary<string, string> PrefixHashes = new()
    {
        ["toy-ioi"] = "acfe4be88ca2007797d67ba602549d05b677edebc4a8f681b0ed38188afc2e82",
        ["toy-docstring"] = "0e32b02074430e2cd219f37e5aba6a8eb41955982fd44fb5277ed7d81417c23a",
        ["toy-sports"] = "631ed625e23fec9ade9585ed657ceb104ef7c4e71ed7b778bbd427f17a79d84c",
    };

    static HookedTransformer Train(string alias, int? stopAfter) => alias switch
    {
        "toy-ioi" => ToyIoiTrainer.Train(new ToyIoiTrainingOptions(), ToyIoiTrainer.BuildTokenizer(), stopAfter: stopAfter),
        "toy-docstring" => ToyDocstringTrainer.Train(new ToyDocstringTrainingOptions(), ToyDocstringTrainer.BuildTokenizer(), stopAfter: stopAfter),
        _ => ToySportsTrainer.Train(new ToySportsTrainingOptions(), ToySportsTrainer.BuildTokenizer(), stopAfter: stopAfter),
    };

    /// <summary>The weights file the build writes for <paramref name="model"/>, as bytes.</summary>
    static byte[] WeightsFile(string alias, HookedTransformer model)
    {
        string dir = Directory.CreateTempSubdirectory("toy-retrain").FullName;
        try
        {
            if (alias == ToyDocstring.Alias) TransformerLensCheckpointWriter.Save(model, dir);
            else Gpt2CheckpointWriter.Save(model, dir, new Dictionary<string, JsonNode?> { ["eos_token_id"] = 0 });
            return File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static TheoryData<string> Models() => new() { "toy-ioi", "toy-docstring", "toy-sports" };

    [Theory]
    [MemberData(nameof(Models))]
    public void TheFirstStepsOfTheRecipeGiveTheRecordedWeights(string alias)
    {
        using var model = Train(alias, PrefixSteps);
        string hash = Convert.ToHexString(SHA256.HashData(WeightsFile(alias, model))).ToLowerInvariant();
        output.WriteLine($"{alias}: {hash}");
        Assert.Equal(PrefixHashes[alias], hash);
        // A prefix is not the committed model: the test would pass trivially if training did nothing.
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(TestFiles.RepoRoot, "data", "models", alias, "model.safetensors")), WeightsFile(alias, model));
    }

    [SkippableTheory]
    [MemberData(nameof(Models))]
    public void RetrainingReproducesTheCommittedWeightsByteForByte(string alias)
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("WORKBOOK_RETRAIN") == "1", "Set WORKBOOK_RETRAIN=1 to retrain every toy model in full (minutes each) and compare the weights.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var model = Train(alias, stopAfter: null);
        output.WriteLine($"{alias}: trained in {clock.Elapsed.TotalSeconds:F0} s");
        Assert.Equal(File.ReadAllBytes(Path.Combine(TestFiles.RepoRoot, "data", "models", alias, "model.safetensors")), WeightsFile(alias, model));
    }
}
