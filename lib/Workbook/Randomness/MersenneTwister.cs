namespace Workbook.Randomness;

/// <summary>
/// The MT19937 generator of Matsumoto and Nishimura (32-bit output), with both of its reference seeding
/// routines: <see cref="InitGenrand"/> (one 32-bit seed, used by numpy's legacy <c>RandomState.seed(int)</c>)
/// and <see cref="InitByArray"/> (a key of 32-bit words, used by Python's <c>random.seed(int)</c>).
/// Written from the published algorithm so that Python- and numpy-generated datasets can be regenerated exactly.
/// </summary>
public sealed class MersenneTwister
{
    const int N = 624;
    const int M = 397;
    const uint MatrixA = 0x9908b0dfU;
    const uint UpperMask = 0x80000000U;
    const uint LowerMask = 0x7fffffffU;

    readonly uint[] _mt = new uint[N];
    int _index = N + 1;

    /// <summary>Seeds the state from one 32-bit value (the reference <c>init_genrand</c>).</summary>
    public void InitGenrand(uint seed)
    {
        _mt[0] = seed;
        for (int i = 1; i < N; i++)
            _mt[i] = unchecked(1812433253U * (_mt[i - 1] ^ (_mt[i - 1] >> 30)) + (uint)i);
        _index = N;
    }

    /// <summary>Seeds the state from a key of 32-bit words (the reference <c>init_by_array</c>).</summary>
    public void InitByArray(ReadOnlySpan<uint> key)
    {
        if (key.Length == 0) throw new ArgumentException("The seeding key must hold at least one word.", nameof(key));
        InitGenrand(19650218U);
        int i = 1, j = 0;
        for (int k = Math.Max(N, key.Length); k > 0; k--)
        {
            _mt[i] = unchecked((_mt[i] ^ ((_mt[i - 1] ^ (_mt[i - 1] >> 30)) * 1664525U)) + key[j] + (uint)j);
            i++;
            j++;
            if (i >= N)
            {
                _mt[0] = _mt[N - 1];
                i = 1;
            }
            if (j >= key.Length) j = 0;
        }
        for (int k = N - 1; k > 0; k--)
        {
            _mt[i] = unchecked((_mt[i] ^ ((_mt[i - 1] ^ (_mt[i - 1] >> 30)) * 1566083941U)) - (uint)i);
            i++;
            if (i >= N)
            {
                _mt[0] = _mt[N - 1];
                i = 1;
            }
        }
        _mt[0] = 0x80000000U; // most significant bit set: the state is never all zero
        _index = N;
    }

    /// <summary>The next 32-bit output.</summary>
    public uint NextUInt32()
    {
        if (_index >= N)
        {
            if (_index == N + 1) InitGenrand(5489U); // the reference default seed when never seeded
            Regenerate();
        }
        uint y = _mt[_index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= y >> 18;
        return y;
    }

    void Regenerate()
    {
        int kk;
        uint y;
        for (kk = 0; kk < N - M; kk++)
        {
            y = (_mt[kk] & UpperMask) | (_mt[kk + 1] & LowerMask);
            _mt[kk] = _mt[kk + M] ^ (y >> 1) ^ ((y & 1U) != 0 ? MatrixA : 0U);
        }
        for (; kk < N - 1; kk++)
        {
            y = (_mt[kk] & UpperMask) | (_mt[kk + 1] & LowerMask);
            _mt[kk] = _mt[kk + (M - N)] ^ (y >> 1) ^ ((y & 1U) != 0 ? MatrixA : 0U);
        }
        y = (_mt[N - 1] & UpperMask) | (_mt[0] & LowerMask);
        _mt[N - 1] = _mt[M - 1] ^ (y >> 1) ^ ((y & 1U) != 0 ? MatrixA : 0U);
        _index = 0;
    }

    /// <summary>A double in [0, 1) with 53 random bits, built from two outputs as both Python and numpy do.</summary>
    public double NextDouble53()
    {
        uint a = NextUInt32() >> 5, b = NextUInt32() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
}
