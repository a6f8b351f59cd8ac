using System.Text;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Figures;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tokenization;
using Workbook.Util;

namespace Workbook.Tests.Reliability;

/// <summary>
/// Every JSON reader goes through <see cref="JsonInput"/>: malformed text, a root that is not an object and (for byte
/// readers) bytes that are not UTF-8 give the same one-line messages, naming the source, in the reader's own exception type.
/// </summary>
public class JsonInputTests
{
    public static IEnumerable<object[]> Readers() => new (string Name, Type Error, Action<string> Read)[]
    {
        ("scenario file", typeof(FormatException), t => ScenarioFile.Parse(new MemoryStream(Encoding.UTF8.GetBytes(t)), "src.json")),
        ("circuit file", typeof(FormatException), t => SymbolicCircuitJson.Read(t, "c", "src.json")),
        ("dataset", typeof(FormatException), t => AutoCircuitJson.Read(t, "d", "src.json")),
        ("config.json", typeof(CheckpointException), t => ConfigJson.Parse(t, "src.json")),
        ("tokenizer.json (BPE)", typeof(TokenizerException), t => HuggingFaceTokenizer.FromJson(t, "src.json")),
        ("tokenizer.json (word level)", typeof(FormatException), t => WordLevelTokenizer.FromJson(t, "src.json")),
        ("scores file", typeof(FormatException), t => ScoresJson.Read(t, "src.json")),
        ("figure", typeof(FormatException), t => Figure.FromJson(t, "src.json")),
    }.Select(r => new object[] { r.Name, r.Error, r.Read });

    [Theory]
    [MemberData(nameof(Readers))]
    public void MalformedJsonIsOneErrorNamingTheSource(string reader, Type error, Action<string> read)
    {
        var e = Assert.Throws(error, () => read("{\"a\": [1, 2"));
        Assert.True(e.Message.StartsWith("src.json: not valid JSON", StringComparison.Ordinal), $"{reader}: {e.Message}");
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void ARootThatIsNotAnObjectIsRefusedNamingTheSource(string reader, Type error, Action<string> read)
    {
        if (reader == "figure") return; // a figure is deserialized: "not valid JSON for Figure" says what is wrong
        var e = Assert.Throws(error, () => read("[1, 2]"));
        Assert.Contains("src.json", e.Message);
        Assert.Contains("object", e.Message);
    }

    [Fact]
    public void BytesThatAreNotUtf8AreRefusedBeforeParsing()
    {
        var bytes = new byte[] { (byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}' };
        Assert.Equal("src.json: not valid UTF-8 text.", Assert.Throws<FormatException>(() => ScenarioFile.Parse(new MemoryStream(bytes), "src.json")).Message);
        Assert.Equal("h: not valid UTF-8 text.", Assert.Throws<CheckpointException>(() => JsonInput.Parse(bytes, "h", (m, e) => new CheckpointException(m, e))).Message);
    }

    // JSON's grammar admits "\ud800" (half a surrogate pair); .NET strings cannot hold it, and JsonDocument parses the
    // text and throws an InvalidOperationException only when a lookup or GetString meets it. The fuzzers found this
    // through the hub's model API answer ({"\ud800": ...} made TryGetProperty("sha") throw).
    public static IEnumerable<object[]> HalfSurrogates() =>
        from reader in Readers()
        from text in new[] { "{\"\\ud800\": 1}", "{\"a\": \"x\\udc00y\"}", "{\"a\": [\"\\ud83d\\u0041\"]}" }
        select new object[] { reader[0], reader[1], reader[2], text };

    [Theory]
    [MemberData(nameof(HalfSurrogates))]
    public void AnEscapeOfHalfASurrogatePairIsRefusedAsNotValidJson(string reader, Type error, Action<string> read, string text)
    {
        var e = Assert.Throws(error, () => read(text));
        Assert.True(e.Message.StartsWith("src.json: not valid JSON", StringComparison.Ordinal), $"{reader}: {e.Message}");
        Assert.Contains("surrogate", e.Message);
    }

    [Fact]
    public void AWholeSurrogatePairIsAccepted()
    {
        using var doc = JsonInput.Parse(Encoding.UTF8.GetBytes("{\"\\ud83d\\ude00\": \"\\u00e9\"}"), "src.json");
        Assert.Equal("\u00e9", doc.RootElement.GetProperty("\U0001F600").GetString());
    }

    [Fact]
    public void TheHubsModelApiAnswerWithHalfASurrogateIsAHubError()
    {
        var answer = Encoding.UTF8.GetBytes("{\"\\ud800\":0,\"sha\":\"0123456789abcdef0123456789abcdef01234567\"}");
        var e = Assert.Throws<Workbook.Hub.HubException>(() => Workbook.Hub.HubClient.ParseRevision(answer, Workbook.Hub.RepoId.Parse("test-org/tiny"), "api/models/test-org/tiny"));
        Assert.Contains("api/models/test-org/tiny", e.Message);
        Assert.Contains("surrogate", e.Message);
    }
}
