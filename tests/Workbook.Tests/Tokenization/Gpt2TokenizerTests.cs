using Workbook.Tokenization;

namespace Workbook.Tests.Tokenization;

public class Gpt2TokenizerTests
{
    [Fact]
    public void MatchesKnownGpt2Ids()
    {
        // Ids from platform notes (checked against the reference GPT-2 tokenizer).
        var t = new Gpt2Tokenizer();
        Assert.Equal(new[] { 2215, 5335, 290, 1757, 1816, 284, 262, 3650, 11, 1757, 2921, 257, 4144, 284 },
            t.Encode("When Mary and John went to the store, John gave a drink to"));
        Assert.Equal(5335, t.SingleToken(" Mary"));
        Assert.Equal(1757, t.SingleToken(" John"));
    }

    [Fact]
    public void BosIsOnlyAddedWhenAsked()
    {
        var t = new Gpt2Tokenizer();
        Assert.Equal(new[] { 5335 }, t.EncodePrompt(" Mary", prependBos: false));
        Assert.Equal(new[] { 50256, 5335 }, t.EncodePrompt(" Mary", prependBos: true));
    }

    [Fact]
    public void MultiTokenAnswerIsAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => new Gpt2Tokenizer().SingleToken(" Maryanne-Louise"));
        Assert.Contains("exactly one token", e.Message);
    }
}
