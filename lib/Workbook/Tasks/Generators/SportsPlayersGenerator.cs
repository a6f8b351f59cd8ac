using System.Reflection;
using Workbook.Randomness;

namespace Workbook.Tasks.Generators;

/// <summary>A sport of the Sports Players task; each is one token (" football", ...) for Pythia's tokenizer.</summary>
public enum Sport { Football, Basketball, Baseball }

/// <summary>A player whose prompt passed the original filter, with the sport they play.</summary>
public sealed record SportsPlayer(string Name, Sport Sport);

/// <summary>
/// Sports Players prompts (spec D.4): "Fact: Tiger Woods plays the sport of golf\nFact: {player} plays the sport of",
/// answer the player's sport, wrong answers the other two (in the order football, basketball, baseball), corrupt
/// prompt a player of a randomly chosen other sport. Players come from a table shipped with the workbook
/// (<c>data/tasks/sports-players.tsv</c>): the 249 players whose prompts survived AutoCircuit's Pythia-2.8B filter.
/// The original pairing was unseeded; this generator follows the same procedure with a seeded Python generator.
/// </summary>
public static class SportsPlayersGenerator
{
    public const string Template = "Fact: Tiger Woods plays the sport of golf\nFact: {0} plays the sport of";

    /// <summary>Word positions without BOS: the three name tokens are 12..14, the last token 18 (spec D.4).</summary>
    public static WordPositions WordIdxs { get; } = new(new KeyValuePair<string, int>[] { new("first_name_tok", 12), new("final_name_tok", 14), new("end", 18) });

    public static string AnswerText(Sport sport) => " " + sport.ToString().ToLowerInvariant();

    static readonly Lazy<IReadOnlyList<SportsPlayer>> PlayersLazy = new(LoadPlayers);

    /// <summary>The tabulated (player, sport) pairs, in table order.</summary>
    public static IReadOnlyList<SportsPlayer> Players => PlayersLazy.Value;

    static IReadOnlyList<SportsPlayer> LoadPlayers()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Workbook.Data.sports-players.tsv")
            ?? throw new InvalidOperationException("The sports players table is missing from the Workbook assembly.");
        using var reader = new StreamReader(stream);
        return ParseTable(reader.ReadToEnd(), "sports-players.tsv");
    }

    /// <summary>Parses a table of "player&lt;TAB&gt;sport" lines (a header line "player sport" and '#' comments are skipped).</summary>
    public static IReadOnlyList<SportsPlayer> ParseTable(string text, string source)
    {
        var result = new List<SportsPlayer>();
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#') || line == "player\tsport") continue;
            var parts = line.Split('\t');
            if (parts.Length != 2 || parts[0].Trim().Length == 0 || !Enum.TryParse<Sport>(parts[1].Trim(), ignoreCase: true, out var sport))
                throw new FormatException($"{source}, line {lineNo}: expected 'player<TAB>football|basketball|baseball', got '{line}'.");
            result.Add(new SportsPlayer(parts[0].Trim(), sport));
        }
        return result;
    }

    public static PromptDataset Generate(int seed = 0, IReadOnlyList<SportsPlayer>? players = null)
    {
        players ??= Players;
        var bySport = Enum.GetValues<Sport>().Select(s => players.Where(p => p.Sport == s).ToList()).ToArray();
        int perSport = bySport.Min(l => l.Count);
        if (perSport == 0) throw new ArgumentException("The sports players table needs at least one player of every sport.");
        var rng = new PythonRandom(seed);
        var prompts = new List<TaskPrompt>();
        // As the original: per clean sport, reshuffle every sport's list, then pair player i with player i of a random other sport.
        foreach (var sport in Enum.GetValues<Sport>())
        {
            foreach (var list in bySport) rng.Shuffle(list);
            var others = Enum.GetValues<Sport>().Where(s => s != sport).ToArray();
            for (int i = 0; i < perSport; i++)
            {
                var corruptSport = rng.Choice(others);
                prompts.Add(new TaskPrompt(
                    PromptInput.FromText(string.Format(Template, bySport[(int)sport][i].Name)),
                    PromptInput.FromText(string.Format(Template, bySport[(int)corruptSport][i].Name)),
                    AnswerList.FromTexts(new[] { AnswerText(sport) }),
                    AnswerList.FromTexts(others.Select(AnswerText))));
            }
        }
        return new PromptDataset { Name = "sports-players", WordIdxs = WordIdxs, Prompts = prompts };
    }
}
