namespace Workbook.Randomness;

/// <summary>
/// numpy's legacy <c>np.random.seed(n)</c> / <c>RandomState</c> behaviour for the calls the paper's dataset
/// generators make: integer seeding (MT19937 <c>init_genrand</c>), <see cref="RandomSample"/>,
/// <see cref="RandInt"/> (masked rejection sampling on 32-bit draws), <see cref="Choice{T}"/> with and without
/// replacement, and <see cref="Permutation"/> / <see cref="Shuffle{T}"/>.
/// </summary>
public sealed class NumpyRandomState
{
    readonly MersenneTwister _mt = new();

    public NumpyRandomState(uint seed) => Seed(seed);

    /// <summary><c>np.random.seed(n)</c> for 0 ≤ n &lt; 2³².</summary>
    public void Seed(uint seed) => _mt.InitGenrand(seed);

    /// <summary><c>random_sample()</c> / <c>rand()</c>: a double in [0, 1) with 53 random bits.</summary>
    public double RandomSample() => _mt.NextDouble53();

    /// <summary>
    /// A uniform integer in [0, max] by drawing and masking to the smallest all-ones mask ≥ max, rejecting values
    /// above max (numpy's bounded masked generator and its legacy <c>random_interval</c>).
    /// </summary>
    public ulong MaskedBelowOrEqual(ulong max)
    {
        if (max == 0) return 0;
        ulong mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        ulong value;
        if (max <= uint.MaxValue)
        {
            while ((value = _mt.NextUInt32() & mask) > max) { }
        }
        else
        {
            while ((value = (((ulong)_mt.NextUInt32() << 32) | _mt.NextUInt32()) & mask) > max) { }
        }
        return value;
    }

    /// <summary><c>randint(low, high)</c>: a uniform integer in [low, high) (high excluded).</summary>
    public long RandInt(long low, long high)
    {
        if (high <= low) throw new ArgumentException($"randint needs low < high, got [{low}, {high}).");
        return low + (long)MaskedBelowOrEqual((ulong)(high - low - 1));
    }

    /// <summary><c>choice(a)</c> with replacement (one draw): <c>a[randint(0, len(a))]</c>.</summary>
    public T Choice<T>(IReadOnlyList<T> population)
    {
        if (population.Count == 0) throw new ArgumentException("Cannot choose from an empty population.", nameof(population));
        return population[(int)RandInt(0, population.Count)];
    }

    /// <summary><c>choice(a, size, replace=True)</c>.</summary>
    public List<T> Choice<T>(IReadOnlyList<T> population, int size)
    {
        var result = new List<T>(size);
        for (int i = 0; i < size; i++) result.Add(Choice(population));
        return result;
    }

    /// <summary><c>choice(a, size, replace=False)</c>: the first <paramref name="size"/> entries of a permutation.</summary>
    public List<T> ChoiceWithoutReplacement<T>(IReadOnlyList<T> population, int size)
    {
        if (size < 0 || size > population.Count)
            throw new ArgumentException($"Cannot take a sample of {size} without replacement from {population.Count} items.");
        return Permutation(population.Count).Take(size).Select(i => population[i]).ToList();
    }

    /// <summary><c>permutation(n)</c>: a shuffled 0..n−1.</summary>
    public int[] Permutation(int n)
    {
        var result = Enumerable.Range(0, n).ToArray();
        Shuffle(result);
        return result;
    }

    /// <summary>Legacy <c>shuffle(x)</c> in place: from the end, j = interval(i), swap.</summary>
    public void Shuffle<T>(IList<T> list)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = (int)MaskedBelowOrEqual((ulong)i);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
