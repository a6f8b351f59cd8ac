using System.Text.Json;
using TorchSharp;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

/// <summary>The device-facing verbs (selfcheck, bench) and what every verb says when CUDA is asked for but missing.</summary>
public class DeviceCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-device-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly string[] AllChecks =
    {
        "reference-logits", "residual-identities", "head-results-sum", "hooks-per-call",
        "empty-patch-is-clean", "resample-all-is-corrupt", "node-equals-out-edges", "float32-matmul",
    };

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void SelfCheckPassesEveryCheckOnTheCpu(string model)
    {
        // The scenario file next to the model folder is found by default and supplies the reference logits.
        var r = CliRunner.Run("selfcheck", "--model", TestFiles.Fixture(model), "--device", "cpu", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.True(doc.RootElement.GetProperty("passed").GetBoolean());
        var checks = doc.RootElement.GetProperty("checks").EnumerateArray().ToList();
        Assert.Equal(AllChecks, checks.Select(c => c.GetProperty("name").GetString()));
        Assert.All(checks, c => Assert.Equal("Pass", c.GetProperty("outcome").GetString()));
        Assert.Contains("PASS  reference-logits", r.Err); // progress lines go to stderr in JSON mode
    }

    [Fact]
    public void SelfCheckFailsWhenTheReferenceLogitsDisagree()
    {
        // Shift one expected logit of the unpatched scenario by 1e-3 (ten times the tolerance).
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(TestFiles.Fixture("tiny-gpt2-scenarios.json")))!;
        var unpatched = json["scenarios"]!.AsArray().Single(s => s!["patch"]!.GetValue<string>() == "none")!;
        var cell = unpatched["logits"]![2]![5]!.AsArray();
        cell[7] = cell[7]!.GetValue<double>() + 1e-3;
        string scenarios = Path.Combine(_dir, "perturbed.json");
        File.WriteAllText(scenarios, json.ToJsonString());

        var r = CliRunner.Run("selfcheck", "--model", TestFiles.Fixture("tiny-gpt2"), "--scenarios", scenarios);
        Assert.Equal(1, r.ExitCode);
        var lines = r.Out.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("FAIL  reference-logits", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("PASS  hooks-per-call", StringComparison.Ordinal));
        Assert.Contains("1 of 8 checks FAILED", r.Out);
    }

    [Fact]
    public void SelfCheckWithoutAReferenceUsesRandomPromptsAndSkipsTheReferenceCheck()
    {
        // A model folder with no scenario file beside it.
        string model = Path.Combine(_dir, "model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(TestFiles.Fixture("tiny-gpt2"))) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        var r = CliRunner.Run("selfcheck", "--model", model, "--checks", "reference-logits,resample-all-is-corrupt", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var outcomes = doc.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("outcome").GetString());
        Assert.Equal(new Dictionary<string, string?> { ["reference-logits"] = "Skipped", ["resample-all-is-corrupt"] = "Pass" }, outcomes);
    }

    [Fact]
    public void SelfCheckRejectsAnUnknownCheckName()
    {
        var r = CliRunner.Run("selfcheck", "--model", TestFiles.Fixture("tiny-gpt2"), "--checks", "hooks-per-cal");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: --checks: unknown check hooks-per-cal", r.Err);
        Assert.Contains("hooks-per-call", r.Err);
    }

    static bool CudaPresent()
    {
        try { return torch.cuda.is_available(); }
        catch (Exception) { return false; }
    }

    public static IEnumerable<object[]> VerbsOnCuda()
    {
        string gpt2 = TestFiles.Fixture("tiny-gpt2");
        yield return new object[] { new[] { "run", "--model", gpt2, "--tokens", "1,2,3" } };
        yield return new object[] { new[] { "hooks", "--model", gpt2 } };
        yield return new object[] { new[] { "patch", "--model", gpt2, "--scenarios", TestFiles.Fixture("tiny-gpt2-scenarios.json"), "--out", "unused.json" } };
        yield return new object[] { new[] { "selfcheck", "--model", gpt2 } };
        yield return new object[] { new[] { "bench", "patching", "--batch", "1" } };
    }

    [SkippableTheory]
    [MemberData(nameof(VerbsOnCuda))]
    public void AskingForCudaWithoutItSaysSoAndExitsWithOne(string[] args)
    {
        Skip.If(CudaPresent(), "this machine has CUDA");
        var r = CliRunner.Run(args.Concat(new[] { "--device", "cuda" }).ToArray());
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Out);
        Assert.StartsWith("error: CUDA was requested ('cuda') but is not available", r.Err);
        Assert.Contains("Use --device cpu to run on the CPU.", r.Err);
        Assert.Single(r.Err.Trim().Split('\n')); // one clean line, no stack trace
    }

    [Fact]
    public void BenchPatchingTimesThePlainAndThePatchedForward()
    {
        var r = CliRunner.Run("bench", "patching", "--device", "cpu", "--batch", "1", "--seq", "2", "--repeat", "1", "--warmup", "0", "--circuit", "random", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var root = doc.RootElement;
        Assert.Equal(32491, root.GetProperty("graphEdges").GetInt32());
        Assert.Equal(771, root.GetProperty("circuitEdges").GetInt32());
        Assert.Equal(32491 - 771, root.GetProperty("patchedEdges").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(root.GetProperty("deviceName").GetString()));
        double plain = root.GetProperty("plain").GetProperty("medianMs").GetDouble();
        double patched = root.GetProperty("patched").GetProperty("medianMs").GetDouble();
        Assert.True(plain > 0 && patched > 0);
        Assert.Equal(patched / plain, root.GetProperty("patchedOverPlain").GetDouble(), 1e-9);
    }

    [Theory]
    [InlineData("--batch", "0", "--batch must be within 1..100,000")]
    [InlineData("--seq", "0", "--seq must be within 1..1,024")]
    [InlineData("--repeat", "0", "--repeat must be within 1..100,000")]
    public void BenchPatchingRejectsBadSizes(string option, string value, string message)
    {
        var r = CliRunner.Run("bench", "patching", option, value);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"error: {message}", r.Err);
    }
}
