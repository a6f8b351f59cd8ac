using System.CommandLine;
using System.Text.Json;
using Workbook.Cli;
using Workbook.Cli.Commands;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

public class ModelsCommandTests : IDisposable
{
    readonly FakeHub _hub = new();
    readonly string _cache = Directory.CreateTempSubdirectory("wb-cli-").FullName;

    public void Dispose()
    {
        _hub.Dispose();
        Directory.Delete(_cache, recursive: true);
    }

    string? Env(string name) => name switch
    {
        "HF_ENDPOINT" => _hub.Endpoint,
        "HF_HUB_CACHE" => _cache,
        _ => null,
    };

    (int Code, string Out, string Err) Models(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var parsed = ModelsCommand.Build(Env).Parse(args);
        int code;
        try
        {
            code = parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            code = CliErrors.Report(e, error);
        }
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void PullThenListShowsTheCachedModel()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        var (code, output, error) = Models("pull", "test-org/tiny-gpt2", "--json");
        Assert.True(code == 0, error);
        Assert.Equal("", error); // no progress bar when stderr is not a terminal
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal(repo.Commit, doc.RootElement.GetProperty("commit").GetString());
            Assert.Equal(2, doc.RootElement.GetProperty("filesDownloaded").GetInt32());
        }

        (code, output, error) = Models("list");
        Assert.True(code == 0, error);
        Assert.Contains("test-org/tiny-gpt2", output);
        Assert.Contains("complete", output);
        long size = new FileInfo(TestFiles.Fixture("tiny-gpt2/model.safetensors")).Length + repo["config.json"].Content.Length;
        Assert.Contains(ConsoleProgress.Bytes(size), output);

        (code, output, _) = Models("list", "--json");
        using var list = JsonDocument.Parse(output);
        Assert.Equal(size, list.RootElement[0].GetProperty("sizeBytes").GetInt64());
    }

    [Fact]
    public void PullOfUnknownNamesFailsWithOneLine()
    {
        var (code, _, error) = Models("pull", "gtp2");
        Assert.Equal(CliErrors.Failure, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains("'gpt2'", error); // did you mean
        (code, _, error) = Models("pull", "nobody/nothing");
        Assert.Equal(CliErrors.Failure, code);
        Assert.Contains("nobody/nothing", error);
    }

    [Fact]
    public void ModelsVerbIsRegistered() => Assert.Contains(WorkbookCli.Build().Subcommands, c => c.Name == "models");

    [Fact]
    public void RunAcceptsAPromptWhenTheModelHasATokenizer()
    {
        // tiny-gpt2 with a byte-level tokenizer whose ids (bytes) fit its 512-token vocabulary.
        string folder = Path.Combine(_cache, "with-tokenizer");
        Directory.CreateDirectory(folder);
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(TestFiles.Fixture("tiny-gpt2/" + f), Path.Combine(folder, f));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), Hub.HubTests.MinimalByteLevelTokenizer());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"bos_token": "<|endoftext|>"}""");

        string Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            Assert.True(WorkbookCli.Run(args, output, error) == 0, error.ToString());
            return output.ToString();
        }
        using var byPrompt = JsonDocument.Parse(Run("run", "--model", folder, "--prompt", "hi!", "--bos", "--top", "512", "--json"));
        using var byIds = JsonDocument.Parse(Run("run", "--model", folder, "--tokens", "256,104,105,33", "--top", "3", "--json"));
        var a = byPrompt.RootElement.GetProperty("top");
        var b = byIds.RootElement.GetProperty("top");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(b[i].GetProperty("token").GetInt64(), a[i].GetProperty("token").GetInt64());
            Assert.Equal(b[i].GetProperty("logit").GetDouble(), a[i].GetProperty("logit").GetDouble());
        }
        var all = a.EnumerateArray().ToDictionary(p => p.GetProperty("token").GetInt64(), p => p.GetProperty("text").GetString());
        Assert.Equal("h", all[104]);
        Assert.Null(all[400]); // beyond the tokenizer's 257 ids

        var err = new StringWriter();
        Assert.Equal(CliErrors.Failure, WorkbookCli.Run(new[] { "run", "--model", TestFiles.Fixture("tiny-gpt2"), "--prompt", "hi" }, new StringWriter(), err));
        Assert.Contains("no tokenizer", err.ToString());
    }
}
