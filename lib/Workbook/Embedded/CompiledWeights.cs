using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>
/// Writes the weights of a compiled (Tracr-style) model entry by entry, naming residual dimensions instead
/// of indexing them, then copies them into a <see cref="HookedTransformer"/>. Every weight not written is 0,
/// which is what Tracr produces for unused layers and all biases.
/// </summary>
internal sealed class CompiledWeights
{
    readonly TransformerConfig _config;
    readonly ResidualSpace _space;
    readonly Dictionary<string, (float[] Values, long[] Shape)> _tensors = new(StringComparer.Ordinal);

    public CompiledWeights(TransformerConfig config, ResidualSpace space)
    {
        if (config.DModel != space.Count)
            throw new ArgumentException($"Model '{config.Name}' has d_model {config.DModel} but its residual space names {space.Count} directions.");
        _config = config;
        _space = space;
    }

    float[] Tensor(string name, params long[] shape)
    {
        if (!_tensors.TryGetValue(name, out var t))
            _tensors[name] = t = (new float[shape.Aggregate(1L, (a, b) => a * b)], shape);
        return t.Values;
    }

    int Dim(string label) => _space[label];

    /// <summary>W_E[token] gains <paramref name="value"/> along <paramref name="direction"/>.</summary>
    public void Embedding(int token, string direction, double value = 1.0) =>
        Tensor("embed.W_E", _config.DVocab, _config.DModel)[token * _config.DModel + Dim(direction)] = (float)value;

    /// <summary>W_pos[position] gains <paramref name="value"/> along <paramref name="direction"/>.</summary>
    public void Position(int position, string direction, double value = 1.0) =>
        Tensor("pos_embed.W_pos", _config.NCtx, _config.DModel)[position * _config.DModel + Dim(direction)] = (float)value;

    /// <summary>Reading weight of an attention head: W_Q, W_K or W_V[head][direction, headDim].</summary>
    public void AttentionRead(int layer, char which, string direction, int headDim, double value, int head = 0)
    {
        if (which is not ('Q' or 'K' or 'V')) throw new ArgumentException($"Attention input must be Q, K or V, not {which}.");
        CheckHeadDim(headDim);
        var t = Tensor($"blocks.{layer}.attn.W_{which}", _config.NHeads, _config.DModel, _config.DHead);
        t[(head * _config.DModel + Dim(direction)) * _config.DHead + headDim] = (float)value;
    }

    /// <summary>Writing weight of an attention head: W_O[head][headDim, direction].</summary>
    public void AttentionWrite(int layer, int headDim, string direction, double value, int head = 0)
    {
        CheckHeadDim(headDim);
        var t = Tensor($"blocks.{layer}.attn.W_O", _config.NHeads, _config.DHead, _config.DModel);
        t[(head * _config.DHead + headDim) * _config.DModel + Dim(direction)] = (float)value;
    }

    /// <summary>MLP input weight W_in[direction, hidden].</summary>
    public void MlpRead(int layer, string direction, int hidden, double value)
    {
        CheckHidden(hidden);
        Tensor($"blocks.{layer}.mlp.W_in", _config.DModel, _config.DMlp)[Dim(direction) * _config.DMlp + hidden] = (float)value;
    }

    /// <summary>MLP output weight W_out[hidden, direction].</summary>
    public void MlpWrite(int layer, int hidden, string direction, double value)
    {
        CheckHidden(hidden);
        Tensor($"blocks.{layer}.mlp.W_out", _config.DMlp, _config.DModel)[hidden * _config.DModel + Dim(direction)] = (float)value;
    }

    void CheckHeadDim(int d)
    {
        if (d < 0 || d >= _config.DHead) throw new ArgumentOutOfRangeException(nameof(d), $"Head dimension {d} is outside 0..{_config.DHead - 1}.");
    }

    void CheckHidden(int h)
    {
        if (h < 0 || h >= _config.DMlp) throw new ArgumentOutOfRangeException(nameof(h), $"MLP hidden unit {h} is outside 0..{_config.DMlp - 1}.");
    }

    /// <summary>
    /// Builds the model on <paramref name="device"/>: the written entries, zero elsewhere, and an unembedding
    /// that reads the first <c>OutputVocab</c> residual dimensions (W_U = I[:, :d_vocab_out]).
    /// </summary>
    public HookedTransformer Build(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var model = new HookedTransformer(_config, device, dtype);
        try
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var (name, (values, shape)) in _tensors)
            {
                var p = parameters.TryGetValue(name, out var found)
                    ? found
                    : throw new InvalidOperationException($"Model '{_config.Name}' has no parameter '{name}'.");
                p.copy_(tensor(values).reshape(shape));
            }
            parameters["unembed.W_U"].copy_(eye(_config.DModel, _config.OutputVocab));
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
