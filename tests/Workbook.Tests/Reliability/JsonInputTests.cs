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
}
