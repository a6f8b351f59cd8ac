using Workbook.Tests.Cli;
using Workbook.Tests.Support;

namespace Workbook.Tests.Reliability;

/// <summary>
/// The same command with the same seed writes byte-identical results: once in this process and once in a child
/// process (so no state of this process can make them agree), compared byte for byte. A different seed must change
/// the bytes, so the comparison cannot pass by writing nothing that depends on the seed.
/// </summary>
public sealed class DeterminismTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-determinism-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly Dictionary<string, string> NoEnvironment = new();
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    string Path(string name) => System.IO.Path.Combine(_dir, name);

    /// <summary>Runs a command in-process and in a child process; returns both stdouts (every file argument ending in X is written twice, as A and B).</summary>
    (string InProcess, string Child) Twice(params string[] args)
    {
        var first = CliRunner.Run(args.Select(a => a.Replace("{run}", "A")).ToArray());
        Assert.True(first.ExitCode == 0, first.Err);
        var second = CliProcess.Run(NoEnvironment, Timeout, args.Select(a => a.Replace("{run}", "B")).ToArray());
        Assert.True(second.ExitCode == 0, second.Err);
        return (first.Out, second.Out);
    }

    static void AssertSameFolders(string a, string b)
    {
        var files = Directory.GetFiles(a).Select(System.IO.Path.GetFileName).Order().ToArray();
        Assert.NotEmpty(files);
        Assert.Equal(files, Directory.GetFiles(b).Select(System.IO.Path.GetFileName).Order().ToArray());
        foreach (var f in files) Assert.True(File.ReadAllBytes(System.IO.Path.Combine(a, f!)).SequenceEqual(File.ReadAllBytes(System.IO.Path.Combine(b, f!))), $"{f} differs");
    }

    [Fact]
    public void GeneratedDatasetsAreByteIdentical()
    {
        Twice("dataset", "--task", "docstring", "--seed", "5", "--prompts", "20", "--out", Path("docstring-{run}"));
        AssertSameFolders(Path("docstring-A"), Path("docstring-B"));
        Twice("dataset", "--task", "ioi", "--model", "toy-ioi", "--seed", "3", "--prompts", "4", "--out", Path("ioi-{run}"));
        AssertSameFolders(Path("ioi-A"), Path("ioi-B"));
        Assert.Equal(30 + 1, Directory.GetFiles(Path("ioi-A")).Length); // 30 parts and index.json

        Assert.Equal(0, CliRunner.Run("dataset", "--task", "docstring", "--seed", "6", "--prompts", "20", "--out", Path("docstring-seed6")).ExitCode);
        Assert.False(File.ReadAllBytes(Path("docstring-A/docstring.json")).SequenceEqual(File.ReadAllBytes(Path("docstring-seed6/docstring.json"))),
            "another seed must give another dataset");
    }

    [SkippableFact]
    [Trait("Category", TestFiles.AutoCircuitCategory)]
    public void DatasetVerbRegeneratesTheOriginalDocstringFile()
    {
        // An independent reference: AutoCircuit's own docstring_prompts.json, which seed 0 reproduces byte for byte.
        string original = TestFiles.AutoCircuitDataset("docstring_prompts.json");
        var result = CliRunner.Run("dataset", "--task", "docstring", "--seed", "0", "--out", Path("original"));
        Assert.True(result.ExitCode == 0, result.Err);
        Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(Path("original/docstring.json")));
    }

    [Fact]
    public void EvaluationRowsAndSummariesAreByteIdentical()
    {
        var (a, b) = Twice("eval", "--model", "tracr-reverse", "--task", "tracr-reverse", "--circuit", "tracr-reverse-ours", "--ablation", "mean-corrupt",
            "--prompts", "40", "--seed", "4", "--metric", "mse,kl", "--json", "--csv", Path("rows-{run}.csv"));
        Assert.Contains("\"rows\"", a);
        Assert.Equal(a, b);
        Assert.True(File.ReadAllBytes(Path("rows-A.csv")).SequenceEqual(File.ReadAllBytes(Path("rows-B.csv"))), "the CSV rows differ");
    }

    [Fact]
    public void ReportBootstrapIntervalsAreByteIdentical()
    {
        // Tracr's reversal model and its ground-truth circuit: one dataset part, so the grid stays quick. Zero ablation
        // gives per-prompt MSEs that vary, so the bootstrap intervals depend on the seed.
        string[] Args(string seed) => new[] { "report", "--model", "tracr-reverse", "--task", "tracr-reverse", "--circuit", "tracr-reverse-ours",
            "--prompts", "40", "--values", "zero,resample", "--seed", seed, "--json" };
        var (a, b) = Twice(Args("4"));
        Assert.Equal(a, b);
        var other = CliRunner.Run(Args("5"));
        Assert.Equal(0, other.ExitCode);
        // Another seed draws other bootstrap resamples: the report must change.
        Assert.NotEqual(a, other.Out);
    }

    [Fact]
    public void DiscoveryScoresAreByteIdentical()
    {
        // Subnetwork probing samples its hard-concrete masks from the seed, so its scores are the ones a seed can change;
        // edge attribution has no randomness and must still write the same file twice.
        string[] Sp(string seed, string file) => new[] { "discover", "--model", "tracr-xproportion", "--task", "tracr-xproportion", "--algorithm", "sp",
            "--epochs", "5", "--prompts", "40", "--seed", seed, "--out", Path(file) };
        Twice(Sp("7", "sp-{run}.json"));
        Assert.True(File.ReadAllBytes(Path("sp-A.json")).SequenceEqual(File.ReadAllBytes(Path("sp-B.json"))), "the SP scores files differ");
        Assert.Equal(0, CliRunner.Run(Sp("8", "sp-seed8.json")).ExitCode);
        Assert.False(File.ReadAllBytes(Path("sp-A.json")).SequenceEqual(File.ReadAllBytes(Path("sp-seed8.json"))), "another seed must give other SP scores");

        Twice("discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "--algorithm", "eap", "--search", "node", "--prompts", "40",
            "--out", Path("eap-{run}.json"));
        Assert.True(File.ReadAllBytes(Path("eap-A.json")).SequenceEqual(File.ReadAllBytes(Path("eap-B.json"))), "the EAP scores files differ");
    }
}
