using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>
/// A function run at a hook point. It may read the activation, or return a replacement of the same
/// shape (return null to keep the activation). The activation is only valid during the call.
/// </summary>
public delegate Tensor? HookFunction(Tensor activation, string hookName);

/// <summary>
/// Hook functions keyed by TransformerLens hook name, applied for one forward call (see
/// <see cref="HookedTransformer.Forward(Tensor, HookSet?, IForwardInterceptor?)"/>) or attached
/// for the lifetime of a <see cref="HookScope"/>. Nothing here touches the model's weights.
/// </summary>
public sealed class HookSet
{
    readonly Dictionary<string, List<HookFunction>> _hooks = new(StringComparer.Ordinal);

    public HookSet Add(string hookName, HookFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        if (!_hooks.TryGetValue(hookName, out var list)) _hooks[hookName] = list = new List<HookFunction>();
        list.Add(function);
        return this;
    }

    /// <summary>Adds a hook that only reads the activation.</summary>
    public HookSet Read(string hookName, Action<Tensor> reader) =>
        Add(hookName, (t, _) => { reader(t); return null; });

    /// <summary>Adds a hook that replaces the activation with <paramref name="replace"/>(activation).</summary>
    public HookSet Replace(string hookName, Func<Tensor, Tensor> replace) =>
        Add(hookName, (t, _) => replace(t));

    public IEnumerable<string> Names => _hooks.Keys;
    public bool IsEmpty => _hooks.Count == 0;
    internal bool Contains(string name) => _hooks.ContainsKey(name);
    internal IReadOnlyList<HookFunction>? Get(string name) => _hooks.TryGetValue(name, out var l) ? l : null;

    internal static HookSet Merge(IEnumerable<HookSet> sets)
    {
        var merged = new HookSet();
        foreach (var set in sets)
            foreach (var (name, list) in set._hooks)
                foreach (var f in list) merged.Add(name, f);
        return merged;
    }
}

/// <summary>
/// Activations recorded during one forward pass, keyed by hook name. Owns its tensors: dispose it
/// (or the enclosing dispose scope) when done.
/// </summary>
public sealed class ActivationCache : IDisposable
{
    readonly Dictionary<string, Tensor> _values = new(StringComparer.Ordinal);

    public Tensor this[string hookName] => _values.TryGetValue(hookName, out var t)
        ? t
        : throw new KeyNotFoundException($"Hook '{hookName}' was not recorded. Recorded: {string.Join(", ", _values.Keys.Take(8))}{(_values.Count > 8 ? ", ..." : "")}.");

    public bool TryGet(string hookName, out Tensor value) => _values.TryGetValue(hookName, out value!);
    public IReadOnlyCollection<string> Names => _values.Keys;

    internal void Store(string name, Tensor value)
    {
        // The activation belongs to the forward pass's dispose scope; keep our own reference outside it.
        var copy = value.detach().clone().DetachFromDisposeScope();
        if (_values.TryGetValue(name, out var old)) old.Dispose();
        _values[name] = copy;
    }

    public void Dispose()
    {
        foreach (var t in _values.Values) t.Dispose();
        _values.Clear();
    }
}

/// <summary>
/// Hooks attached to a model until disposed. Use with <c>using</c> so that nothing stays attached
/// after the block, even when it throws.
/// </summary>
public sealed class HookScope : IDisposable
{
    readonly HookedTransformer _model;
    internal HookSet Hooks { get; }
    bool _disposed;

    internal HookScope(HookedTransformer model, HookSet hooks)
    {
        _model = model;
        Hooks = hooks;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _model.Detach(this);
    }
}

/// <summary>A hook point's name and the shape of its activation for a given input.</summary>
public sealed record HookInfo(string Name, long[] Shape)
{
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}
