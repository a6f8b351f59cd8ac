using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

/// <summary>
/// What --shard and merge refuse: bad shard numbers (before anything is loaded), shard counts a run cannot fill, and
/// parts that overlap, are missing, belong to another run, command or model, or were damaged. Every refusal is one
/// line on stderr, and a refused merge writes nothing.
/// </summary>
public sealed class ShardRefusalTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-shard-refusal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string File(string name) => Path.Combine(_dir, name);

    /// <summary>An eval of Tracr's reversal model: 6 prompts in batches of 2, so 3 work units.</summary>
    static string[] Eval(string model = "tracr-reverse", string seed = "0", string circuit = "tracr-reverse-ours") =>
        new[] { "eval", "--model", model, "--task", "tracr-reverse", "--circuit", circuit, "--prompts", "6", "--batch-size", "2", "--metric", "mse", "--seed", seed };

    string Shard(string name, string shard, string[] args)
    {
        string part = File(name);
        var run = CliRunner.Run(args.Concat(new[] { "--shard", shard, "--part", part }).ToArray());
        Assert.True(run.ExitCode == 0, run.Err);
        return part;
    }

    static string OneLineError(CliRunner.Result result)
    {
        Assert.Equal(1, result.ExitCode);
        var lines = result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, result.Err);
        Assert.StartsWith("error: ", lines[0]);
        return lines[0];
    }

    [Theory]
    [InlineData("0/3", "K must be between 1 and N=3")]
    [InlineData("4/3", "K must be between 1 and N=3")]
    [InlineData("1/0", "N must be at least 1")]
    [InlineData("two/3", "K 'two' is not a whole number")]
    [InlineData("2", "expected K/N")]
    public void BadShardNumbersAreRefusedBeforeTheModelIsLoaded(string shard, string expected)
    {
        // The model does not exist: the shard's error comes first, so it was checked before any loading.
        foreach (var verb in new[] { "eval", "report", "discover", "roc" })
        {
            var args = new List<string> { verb, "--model", "no-such-model", "--task", "tracr-reverse", "--shard", shard };
            if (verb is "discover" or "roc") args.AddRange(new[] { "--algorithm", "eap" });
            string error = OneLineError(CliRunner.Run(args.ToArray()));
            Assert.Contains($"--shard '{shard}'", error);
            Assert.Contains(expected, error);
        }
    }

    [Fact]
    public void ShardsThatCannotBeFilledOrThatWouldWriteWholeRunOutputsAreRefused()
    {
        Assert.Equal("error: Shard 4/4: this run has only 3 work units (one unit per methodology, dataset part and batch of prompts); use at most 3 shards.",
            OneLineError(CliRunner.Run(Eval().Concat(new[] { "--shard", "4/4" }).ToArray())));
        Assert.Contains("sp: one training run, which cannot be split",
            OneLineError(CliRunner.Run("discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "--algorithm", "sp", "--epochs", "1", "--shard", "1/2")));
        Assert.Contains("--csv cannot be combined with --shard", OneLineError(CliRunner.Run(Eval().Concat(new[] { "--shard", "1/2", "--csv", File("x.csv") }).ToArray())));
        Assert.Contains("--out cannot be combined with --shard",
            OneLineError(CliRunner.Run("discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "--algorithm", "eap", "--shard", "1/2", "--out", File("x.json"))));
        Assert.Contains("--part names the part file of a --shard run", OneLineError(CliRunner.Run(Eval().Concat(new[] { "--part", File("x.json") }).ToArray())));
        Assert.Contains("nothing to split", OneLineError(CliRunner.Run("roc", "--scores", File("none.json"), "--shard", "1/2")));
        Assert.Contains("does not exist", OneLineError(CliRunner.Run(Eval().Concat(new[] { "--shard", "1/2", "--part", File("no/such/folder/p.json") }).ToArray())));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void MergeRefusesPartsThatDoNotMakeExactlyOneRun()
    {
        string a1 = Shard("a1.json", "1/3", Eval()), a2 = Shard("a2.json", "2/3", Eval()), a3 = Shard("a3.json", "3/3", Eval());
        string seed1 = Shard("seed1-3.json", "3/3", Eval(seed: "1"));
        string report = Shard("report-3.json", "3/3", new[] { "report", "--model", "tracr-reverse", "--task", "tracr-reverse", "--prompts", "6", "--batch-size", "2", "--values", "zero" });
        string copy = File("a2-copy.json");
        System.IO.File.Copy(a2, copy);
        string damaged = File("a2-damaged.json");
        System.IO.File.WriteAllText(damaged, EditOneValue(System.IO.File.ReadAllText(a2)));
        string truncated = File("a2-truncated.json");
        System.IO.File.WriteAllText(truncated, System.IO.File.ReadAllText(a2)[..200]);
        string output = File("out/merged.json");
        Directory.CreateDirectory(File("out"));

        string Refusal(params string[] parts)
        {
            string error = OneLineError(CliRunner.Run(new[] { "merge" }.Concat(parts).Concat(new[] { "--out", output }).ToArray()));
            Assert.Empty(Directory.GetFileSystemEntries(File("out")));   // nothing written, not even a temporary file
            return error;
        }
        Assert.Equal($"error: Shard 2/3 is missing (given: '{a1}', '{a3}'); a merge needs every shard of the run.", Refusal(a1, a3));
        Assert.Equal($"error: '{a2}' and '{copy}' are both shard 2/3: they overlap; give each shard once.", Refusal(a1, a2, copy, a3));
        Assert.Contains("is given twice", Refusal(a1, a2, a2, a3));
        Assert.Equal($"error: '{seed1}' and '{a1}' are parts of different runs: their option --seed is '1' and '0'.", Refusal(a1, a2, seed1));
        Assert.Equal($"error: '{report}' is a part of `report` but '{a1}' is a part of `eval`; merge the parts of one run only.", Refusal(a1, a2, report));
        Assert.Contains("do not match their recorded SHA-256", Refusal(a1, damaged, a3));
        Assert.Contains($"'{truncated}' is not a usable workbook part file", Refusal(a1, truncated, a3));
        Assert.Equal($"error: File not found: {File("a3-never-written.json")}", Refusal(a1, a2, File("a3-never-written.json")));

        // A shard run again writes the same bytes (nothing time- or process-dependent in a part) ...
        Assert.True(System.IO.File.ReadAllBytes(a1).SequenceEqual(System.IO.File.ReadAllBytes(Shard("a1-again.json", "1/3", Eval()))), "a shard's part changed between runs");
        // ... and the same three parts merge, in any order, into the same bytes.
        Assert.Equal(0, CliRunner.Run("merge", a3, a1, a2, "--out", output).ExitCode);
        string first = System.IO.File.ReadAllText(output);
        Assert.Equal(0, CliRunner.Run("merge", a2, a3, a1, "--out", output).ExitCode);
        Assert.Equal(first, System.IO.File.ReadAllText(output));
    }

    /// <summary>Changes the first per-prompt value of a part, leaving valid JSON: only the checksum can tell.</summary>
    static string EditOneValue(string text)
    {
        int at = text.IndexOf("\"values\":[", StringComparison.Ordinal);
        at = text.IndexOf("\"values\":[", at + 1, StringComparison.Ordinal) + "\"values\":[".Length;   // the first metric's values
        return text[..at] + "12345," + text[at..].Substring(text[at..].IndexOf(',') + 1);
    }

    [Fact]
    public void MergeRefusesShardsThatRanOnDifferentWeights()
    {
        // The same options and the same path, but the checkpoint changed between the shards: one weight differs.
        string model = File("model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(TestFiles.Fixture("tiny-gpt2"))) System.IO.File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        string circuit = File("circuit.json");
        System.IO.File.WriteAllText(circuit, "{\"edges\":[{\"src\":\"Resid Start\",\"dest\":\"A1.0.V\",\"position\":null},{\"src\":\"A1.0\",\"dest\":\"Resid End\",\"position\":3}]}");
        string p1 = Shard("m1.json", "1/2", Eval(model, circuit: circuit));
        string weights = Path.Combine(model, "model.safetensors");
        var bytes = System.IO.File.ReadAllBytes(weights);
        long header = BitConverter.ToInt64(bytes, 0);
        bytes[8 + header] ^= 1;   // the lowest bit of the first stored float: a change of one ulp
        System.IO.File.WriteAllBytes(weights, bytes);
        string p2 = Shard("m2.json", "2/2", Eval(model, circuit: circuit));
        Assert.Equal($"error: '{p2}' and '{p1}' are parts of different runs: their model parameters (sha256) is",
            OneLineError(CliRunner.Run("merge", p1, p2))[..($"error: '{p2}' and '{p1}' are parts of different runs: their model parameters (sha256) is".Length)]);
    }
}
