using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using Workbook.Model;
using Workbook.Tokenization;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>Hyper-parameters of the toy IOI model and its training run. The defaults produce the committed checkpoint.</summary>
public sealed record ToyIoiTrainingOptions
{
    /// <summary>Seeds the weight initialisation and the order of training sentences.</summary>
    public ulong Seed { get; init; } = 20240401;
    public int Steps { get; init; } = 3000;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Loss weight of the final prediction (the indirect object) relative to every other next-token prediction.</summary>
    public double AnswerWeight { get; init; } = 4.0;
    public int Layers { get; init; } = 3;
    public int DModel { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int DMlp { get; init; } = 256;
    /// <summary>Rows of the position table; the longest training sentence has 21 tokens.</summary>
    public int Context { get; init; } = 32;
    /// <summary>CPU threads for training. One thread makes float reductions, and therefore the weights, reproducible.</summary>
    public int Threads { get; init; } = 1;

    public ToyIoiTrainingOptions Validate()
    {
        if (Steps < 0) throw new ArgumentException("Steps must not be negative.");
        if (BatchSize < 1) throw new ArgumentException("Batch size must be at least 1.");
        if (LearningRate <= 0) throw new ArgumentException("Learning rate must be positive.");
        if (Layers < 1 || DModel < 1 || Heads < 1 || DModel % Heads != 0 || DMlp < 1)
            throw new ArgumentException($"Model shape is invalid: {Layers} layers, d_model {DModel}, {Heads} heads (must divide d_model), d_mlp {DMlp}.");
        if (Threads < 1) throw new ArgumentException("Threads must be at least 1.");
        return this;
    }
}

/// <summary>Progress of a training run, reported every few steps.</summary>
public sealed record ToyIoiTrainingProgress(int Step, int Steps, double Loss, double AnswerLoss, TimeSpan Elapsed);

/// <summary>
/// Trains the toy IOI model: a small GPT-2-style transformer that learns next-token prediction on sentences from the
/// IOI templates (<see cref="IoiSentences"/>), with extra weight on the final word, the indirect object. The answer
/// is the name that appears once among the names before the end, so the task is learnable and does not depend on
/// the corruption used later. Deterministic for a given seed and thread count.
/// </summary>
public static class ToyIoiTrainer
{
    public const string EndOfText = "<|endoftext|>";
    public const string Unknown = "[UNK]";

    /// <summary>The word-level vocabulary: &lt;|endoftext|&gt; (BOS and padding, id 0), [UNK], then every IOI word in first-use order.</summary>
    public static WordLevelTokenizer BuildTokenizer() =>
        new(ToyIoi.Alias, new[] { EndOfText, Unknown }.Concat(IoiSentences.Words()).ToList(), Unknown, new[] { EndOfText, Unknown }, EndOfText);

    public static TransformerConfig ModelConfig(ToyIoiTrainingOptions o, int vocabSize) => new TransformerConfig
    {
        Name = ToyIoi.Alias,
        Architecture = Architecture.Gpt2,
        NLayers = o.Layers,
        DModel = o.DModel,
        NHeads = o.Heads,
        DHead = o.DModel / o.Heads,
        DMlp = o.DMlp,
        DVocab = vocabSize,
        NCtx = o.Context,
        Activation = ActivationFunction.GeluNew,
        TiedEmbeddings = true,
        BosTokenId = 0,
    }.Validate();

    /// <summary>Trains a new model. The model is frozen (no gradients) when returned.</summary>
    public static HookedTransformer Train(ToyIoiTrainingOptions options, WordLevelTokenizer tokenizer, IProgress<ToyIoiTrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        int previousThreads = torch.get_num_threads();
        torch.set_num_threads(options.Threads);
        var model = new HookedTransformer(ModelConfig(options, tokenizer.VocabSize));
        try
        {
            Initialise(model, options.Seed);
            TrainSteps(model, options, tokenizer, progress, cancel);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            torch.set_num_threads(previousThreads);
        }
    }

    /// <summary>GPT-2's initialisation: N(0, 0.02) weights, output projections scaled by 1/sqrt(2·layers), zero biases, unit LayerNorm gains.</summary>
    static void Initialise(HookedTransformer model, ulong seed)
    {
        using var generator = new Generator(seed);
        double std = 0.02, outStd = 0.02 / Math.Sqrt(2 * model.Config.NLayers);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith(".W_O", StringComparison.Ordinal) || name.EndsWith(".W_out", StringComparison.Ordinal)) p.normal_(0, outStd, generator);
            else if (name.Contains(".W_", StringComparison.Ordinal) || name.StartsWith("embed.", StringComparison.Ordinal) || name.StartsWith("pos_embed.", StringComparison.Ordinal)) p.normal_(0, std, generator);
            else if (name.EndsWith(".w", StringComparison.Ordinal)) p.fill_(1.0);
            else p.zero_();
        }
    }

    static void TrainSteps(HookedTransformer model, ToyIoiTrainingOptions o, WordLevelTokenizer tokenizer, IProgress<ToyIoiTrainingProgress>? progress, CancellationToken cancel)
    {
        // GPT-2 has no unembedding bias: keep b_U at zero and out of the optimiser.
        var trainable = model.named_parameters().Where(p => p.name != "unembed.b_U").Select(p => p.parameter).ToList();
        foreach (var p in trainable) p.requires_grad = true;
        var decayed = model.named_parameters().Where(p => p.name != "unembed.b_U" && p.parameter.dim() >= 2).Select(p => p.parameter).ToList();
        var notDecayed = trainable.Except(decayed).ToList();
        using var optimizer = optim.AdamW(new[]
        {
            new AdamW.ParamGroup(decayed, new AdamW.Options { weight_decay = o.WeightDecay }),
            new AdamW.ParamGroup(notDecayed, new AdamW.Options { weight_decay = 0.0 }),
        }, lr: o.LearningRate, beta1: 0.9, beta2: 0.99);

        var data = new SeededRandom(o.Seed ^ 0x5EED_DA7AUL);
        var clock = Stopwatch.StartNew();
        double lossSum = 0, answerSum = 0;
        int since = 0;
        try
        {
            for (int step = 0; step < o.Steps; step++)
            {
                cancel.ThrowIfCancellationRequested();
                double lr = LearningRateAt(step, o);
                foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                using var scope = NewDisposeScope();
                var batch = Batch(tokenizer, o.BatchSize, data.NextUInt64(), o.AnswerWeight);
                var logits = model.Forward(batch.Inputs);                                   // [B, T, V]
                var nll = -logits.log_softmax(-1).gather(-1, batch.Targets.unsqueeze(-1)).squeeze(-1);
                var loss = (nll * batch.Weights).sum() / batch.Weights.sum();
                var answerLoss = (nll * batch.AnswerMask).sum() / batch.AnswerMask.sum();
                optimizer.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(trainable, 1.0);
                optimizer.step();
                lossSum += loss.item<float>();
                answerSum += answerLoss.item<float>();
                since++;
                if (progress != null && (since == 100 || step == o.Steps - 1))
                {
                    progress.Report(new ToyIoiTrainingProgress(step + 1, o.Steps, lossSum / since, answerSum / since, clock.Elapsed));
                    lossSum = answerSum = 0;
                    since = 0;
                }
            }
        }
        finally
        {
            foreach (var p in model.parameters()) p.requires_grad = false;
        }
    }

    /// <summary>Linear warm-up, then cosine decay to a tenth of the peak.</summary>
    static double LearningRateAt(int step, ToyIoiTrainingOptions o)
    {
        if (step < o.WarmupSteps) return o.LearningRate * (step + 1) / o.WarmupSteps;
        double progress = o.Steps <= o.WarmupSteps ? 1 : (double)(step - o.WarmupSteps) / (o.Steps - o.WarmupSteps);
        return o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    sealed record TrainingBatch(Tensor Inputs, Tensor Targets, Tensor Weights, Tensor AnswerMask);

    /// <summary>
    /// Full sentences (prompt + answer), right-padded with &lt;|endoftext|&gt;: inputs are tokens 0..n-2, targets
    /// 1..n-1, padding has weight 0 (with causal attention it cannot affect the real positions).
    /// </summary>
    static TrainingBatch Batch(WordLevelTokenizer tokenizer, int size, ulong seed, double answerWeight)
    {
        var prompts = IoiSentences.Generate(tokenizer, size, seed);
        int longest = prompts.Max(p => p.CleanTokens.Length + 1);
        int T = longest - 1;
        var inputs = new long[size * T];
        var targets = new long[size * T];
        var weights = new float[size * T];
        var answer = new float[size * T];
        int pad = tokenizer.Id(EndOfText);
        Array.Fill(inputs, pad);
        Array.Fill(targets, pad);
        for (int b = 0; b < size; b++)
        {
            var sentence = prompts[b].CleanTokens.Append(prompts[b].AnswerToken).ToArray();
            for (int t = 0; t < sentence.Length - 1; t++)
            {
                inputs[b * T + t] = sentence[t];
                targets[b * T + t] = sentence[t + 1];
                weights[b * T + t] = 1;
            }
            int last = b * T + sentence.Length - 2;
            weights[last] = (float)answerWeight;
            answer[last] = 1;
        }
        return new TrainingBatch(tensor(inputs).view(size, T), tensor(targets).view(size, T), tensor(weights).view(size, T), tensor(answer).view(size, T));
    }
}
