using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks.Generators;
using Workbook.Tokenization;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>
/// The toy Sports model: a 2-layer GPT-2-style transformer trained by this repository to memorise which of three sports
/// (football, basketball, baseball, as in the paper) each of 240 made-up players plays (<see cref="ToySportsTrainer"/>),
/// committed under <c>data/models/toy-sports/</c> and built into the library. Its prompts are the Sports Players task's
/// with these players (task <c>toy-sports</c>): "Fact: Tiger Woods plays the sport of golf\nFact: {player} plays the sport of".
/// Every name is three tokens, like the players of the paper's table under Pythia's tokenizer, so the task's positions
/// (first_name_tok 12, final_name_tok 14, end 18) are the paper's.
/// </summary>
public static class ToySports
{
    public const string Alias = "toy-sports";

    /// <summary>Players per sport the model memorises (the paper's table has 83).</summary>
    public const int PlayersPerSport = 80;
    /// <summary>Further made-up players the model never sees: its accuracy on them is chance, which shows it memorised.</summary>
    public const int UnknownPlayerCount = 60;
    const ulong PlayerSeed = 20240404;

    /// <summary>Invented name parts: a player is one first name, one middle name and one last name (three tokens).</summary>
    public static IReadOnlyList<string> FirstNames { get; } =
        "Alvo Brisa Cadri Delo Emra Farin Gosti Halme Ildra Jevo Kasti Lumra Morvi Nadel Orsi Pirra Quonel Rusta Selvi Tamro Ulvi Vasko Wendri Zelto".Split(' ');
    public static IReadOnlyList<string> MiddleNames { get; } = "Ash Bel Cor Dun Eld Fal Gorm Hask".Split(' ');
    public static IReadOnlyList<string> LastNames { get; } =
        "Brannik Castrow Dremmel Eskarov Fenwold Garrowin Halvatt Ivarro Jandrel Kolbeck Lorvane Marrick Nesbolt Orlavin Pemberlo Quarlen Rostavy Selberin Tallory Umbrecht Varnosk Wedderel Yorvane Zandrik"
            .Split(' ');

    public static IReadOnlyList<string> NameParts { get; } = FirstNames.Concat(MiddleNames).Concat(LastNames).ToArray();

    static readonly Lazy<(IReadOnlyList<SportsPlayer> Known, IReadOnlyList<SportsPlayer> Unknown)> PlayersLazy = new(MakePlayers);

    /// <summary>The players the model memorised, 80 per sport, in table order (sport by sport).</summary>
    public static IReadOnlyList<SportsPlayer> Players => PlayersLazy.Value.Known;

    /// <summary>Made-up players of the same form the model never saw (each with a sport drawn like the others').</summary>
    public static IReadOnlyList<SportsPlayer> UnknownPlayers => PlayersLazy.Value.Unknown;

    /// <summary>Distinct (first, middle, last) triples in seeded order; the first 240 play a sport each (80 per sport), the next 60 are never trained on.</summary>
    static (IReadOnlyList<SportsPlayer>, IReadOnlyList<SportsPlayer>) MakePlayers()
    {
        var rng = new SeededRandom(PlayerSeed);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var names = new List<string>();
        int needed = 3 * PlayersPerSport + UnknownPlayerCount;
        while (names.Count < needed)
        {
            string name = $"{rng.Choice(FirstNames)} {rng.Choice(MiddleNames)} {rng.Choice(LastNames)}";
            if (seen.Add(name)) names.Add(name);
        }
        var sports = Enum.GetValues<Sport>();
        var known = sports.SelectMany((s, i) => names.Skip(i * PlayersPerSport).Take(PlayersPerSport).Select(n => new SportsPlayer(n, s))).ToArray();
        var unknown = names.Skip(3 * PlayersPerSport).Select((n, i) => new SportsPlayer(n, sports[i % sports.Length])).ToArray();
        return (known, unknown);
    }

    internal static readonly EmbeddedCheckpoint Checkpoint = new(Alias, ToyCircuitFiles.ModelFiles, $"train-toy {Alias}");
    static readonly Lazy<WordLevelTokenizer> TokenizerLazy = new(() => WordLevelTokenizer.Load(Path.Combine(Checkpoint.Folder, "tokenizer.json"), name: Alias));

    public static bool IsAvailable => Checkpoint.IsAvailable;

    /// <summary>A folder holding the checkpoint, extracted from the library once per version.</summary>
    public static string CheckpointFolder => Checkpoint.Folder;

    public static HookedTransformer Load(Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        HuggingFaceCheckpoint.Load(Checkpoint.Folder, ConfigJson.Load(Path.Combine(Checkpoint.Folder, "config.json")), device ?? CPU, dtype, Alias);

    /// <summary>The model's tokenizer (BOS = &lt;|endoftext|&gt;, id 0, never added implicitly).</summary>
    public static WordLevelTokenizer Tokenizer => TokenizerLazy.Value;

    public static SymbolicCircuit NodeCircuit => ToyCircuitFiles.Read(Checkpoint, Component.Node);
    public static SymbolicCircuit EdgeCircuit => ToyCircuitFiles.Read(Checkpoint, Component.Edge);

    /// <summary>Every number of the model card.</summary>
    public static ToyModelReport Evaluation => Checkpoint.ReadJson<ToyModelReport>("evaluation.json", ToyIoiBuild.Json);
}
