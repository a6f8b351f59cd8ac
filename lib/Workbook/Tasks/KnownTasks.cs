using Workbook.Patching;
using Workbook.Tasks.Generators;
using Workbook.Util;

namespace Workbook.Tasks;

/// <summary>The paper's tasks by their CLI names: ioi, docstring, sports-players, tracr-xproportion, tracr-reverse; and toy-sports (Sports Players on the toy model's players).</summary>
public static class KnownTasks
{
    public static TaskDefinition Ioi { get; } = new()
    {
        Name = "ioi",
        Description = "Indirect Object Identification (GPT-2 small): 15 templates × ABBA/BABA, ABC corruption; answer IO vs S",
        PaperModel = "gpt2", PaperCircuit = "ioi", PaperMetric = "logit-diff-recovered", PaperMean = MeanOver.Corrupt, PaperPromptCount = 100,
        Generate = (tokenizer, seed, count) => IoiGenerator.GenerateAll(count ?? 1000, seed,
            tokenizer ?? throw new ArgumentException("The IOI task needs the model's tokenizer to locate the names' token positions.")).ToArray(),
    };

    public static TaskDefinition Docstring { get; } = new()
    {
        Name = "docstring",
        Description = "Docstring (attn-only-4l): predict the next documented argument of a Python method; 1 answer vs 13 candidates",
        PrependBos = true, TailDivergence = true,
        PaperModel = "attn-only-4l", PaperCircuit = "docstring", PaperMetric = "correct-vs-candidates-percent", PaperMean = MeanOver.CleanAndCorrupt, PaperPromptCount = 50,
        Generate = (_, seed, count) => new[] { DocstringGenerator.Generate(count ?? DocstringGenerator.DefaultCount, seed) },
    };

    public static TaskDefinition SportsPlayers { get; } = new()
    {
        Name = "sports-players",
        Description = "Sports Players (Pythia-2.8B-deduped): the sport an athlete plays; 1 answer vs the 2 other sports",
        PrependBos = true, TailDivergence = true, SeparateQkv = false,
        PaperModel = "pythia-2.8b-deduped", PaperCircuit = "sports-players", PaperMetric = "correct-vs-candidates-percent", PaperMean = MeanOver.CleanAndCorrupt,
        PaperPromptCount = 200, PaperShuffles = true, DefaultBatchSize = 10,
        Generate = (_, seed, count) => new[] { SportsPlayersGenerator.Generate(seed).Take(count) },
    };

    /// <summary>
    /// Sports Players with the made-up players the built-in toy Sports model memorised (<see cref="Embedded.ToySports.Players"/>):
    /// the same template, positions, answers and corruption procedure as <see cref="SportsPlayers"/>.
    /// </summary>
    public static TaskDefinition ToySports { get; } = new()
    {
        Name = "toy-sports",
        Description = "Sports Players on the made-up players of the built-in toy-sports model: the same template, positions and corruption; 1 answer vs the 2 other sports",
        PrependBos = true, TailDivergence = true,
        PaperModel = "toy-sports", PaperCircuit = "toy-sports", PaperMetric = "correct-vs-candidates-percent", PaperMean = MeanOver.CleanAndCorrupt,
        PaperPromptCount = 200, PaperShuffles = true,
        Generate = (_, seed, count) => new[] { SportsPlayersGenerator.Generate(seed, Embedded.ToySports.Players).Take(count) },
    };

    public static TaskDefinition TracrXProportion { get; } = new()
    {
        Name = "tracr-xproportion",
        Description = "Tracr X-Proportion: the fraction of x's so far, at each of 5 positions (pre-tokenized, BOS first)",
        Read = ReadPositions.AllButFirst, PreTokenized = true,
        PaperModel = "tracr-xproportion", PaperCircuit = "tracr-xproportion-ours", PaperMetric = "mse", PaperMean = MeanOver.Corrupt,
        PaperPromptCount = 200, PaperShuffles = true, DefaultBatchSize = 200,
        Generate = (_, seed, count) => new[] { TracrGenerator.XProportion(seed).Take(count) },
    };

    public static TaskDefinition TracrReverse { get; } = new()
    {
        Name = "tracr-reverse",
        Description = "Tracr Reverse: the input sequence reversed, one token per position (pre-tokenized, BOS first)",
        Read = ReadPositions.AllButFirst, PreTokenized = true,
        PaperModel = "tracr-reverse", PaperCircuit = "tracr-reverse-ours", PaperMetric = "kl", PaperMean = MeanOver.Corrupt,
        PaperPromptCount = 200, PaperShuffles = true, DefaultBatchSize = 200,
        Generate = (_, seed, count) => new[] { TracrGenerator.Reverse(seed).Take(count) },
    };

    static readonly List<TaskDefinition> Tasks = new() { Ioi, Docstring, SportsPlayers, ToySports, TracrXProportion, TracrReverse };

    /// <summary>Every task: the paper's, then registered ones.</summary>
    public static IReadOnlyList<TaskDefinition> All
    {
        get { lock (Tasks) return Tasks.ToArray(); }
    }

    /// <summary>Adds a task (for the command line, <see cref="Get"/> and listings) until the returned scope is disposed.</summary>
    public static IDisposable Register(TaskDefinition task)
    {
        lock (Tasks)
        {
            if (Tasks.Any(t => string.Equals(t.Name, task.Name, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"A task named '{task.Name}' is already registered.");
            Tasks.Add(task);
        }
        return new Registration(task);
    }

    sealed class Registration(TaskDefinition task) : IDisposable
    {
        public void Dispose()
        {
            lock (Tasks) Tasks.Remove(task);
        }
    }

    public static TaskDefinition Get(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new KeyNotFoundException($"Unknown task '{name}'.{NearestNames.DidYouMean(name, All.Select(t => t.Name))} Tasks: {string.Join(", ", All.Select(t => t.Name))}.");
}
