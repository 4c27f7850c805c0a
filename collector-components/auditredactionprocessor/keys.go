package auditredactionprocessor

import "sync/atomic"

// keyTable maps the configured attribute keys to their rule. Every attribute of every
// record is looked up here, so it avoids hashing the whole key as a Go map does: the slot
// comes from the key's length and three of its bytes (open addressing, linear probing),
// and one string comparison settles it.
type keyTable struct {
	slots []keySlot
	mask  uint32
}

type keySlot struct {
	key  string
	rule keyRule
	used bool
}

type keyRule uint8

const (
	keyAllowed keyRule = 1 << iota // in allowed_keys, or a summary key
	keyIgnored                     // in ignored_keys
)

func keySlotOf(k string) uint32 {
	n := uint32(len(k))
	if n == 0 {
		return 0
	}
	return n*0x9e3779b1 ^ uint32(k[0])*0x85ebca6b ^ uint32(k[n-1])*0xc2b2ae35 ^ uint32(k[n/2])*0x27d4eb2f
}

func newKeyTable(rules map[string]keyRule) keyTable {
	size := uint32(16)
	for size < uint32(4*len(rules)) {
		size *= 2
	}
	t := keyTable{slots: make([]keySlot, size), mask: size - 1}
	for k, rule := range rules {
		i := keySlotOf(k) & t.mask
		for t.slots[i].used {
			i = (i + 1) & t.mask
		}
		t.slots[i] = keySlot{key: k, rule: rule, used: true}
	}
	return t
}

func (t *keyTable) rule(k string) keyRule {
	for i := keySlotOf(k) & t.mask; t.slots[i].used; i = (i + 1) & t.mask {
		if t.slots[i].key == k {
			return t.slots[i].rule
		}
	}
	return 0
}

// keyCache remembers what the key patterns (ignored_key_patterns, blocked_key_patterns)
// decided for recently seen keys. Attribute keys repeat from record to record, so most
// lookups end here instead of in a scan and a prefilter. Direct-mapped and lock-free: a
// slot holds the last key that hashed to it; a collision only costs a recomputation.
type keyCache struct {
	slots [keyCacheSlots]atomic.Pointer[keyVerdict]
}

const keyCacheSlots = 1024 // a power of two

type keyVerdict struct {
	key              string
	ignored, blocked bool
}

func (c *keyCache) get(k string) *keyVerdict {
	if v := c.slots[keySlotOf(k)&(keyCacheSlots-1)].Load(); v != nil && v.key == k {
		return v
	}
	return nil
}

func (c *keyCache) put(v *keyVerdict) { c.slots[keySlotOf(v.key)&(keyCacheSlots-1)].Store(v) }
