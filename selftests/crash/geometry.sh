# SPDX-License-Identifier: GPL-2.0
# Geometries of the power-cut test (sourced after lib.sh by
# test_geometry.sh and ../crash_long): each a recorded workload on an image
# whose metadata the default one never stresses.
#   c64k     64 KiB clusters, 48 MiB (test_power_cut.sh's image)
#   c4k      4 KiB clusters
#   c512     512-byte clusters, 5 times the operations: the refcount
#            table (one cluster, 8 MiB of file) must grow inside the log
#            (checked)
#   evict    4 KiB clusters, 768 MiB image, cache_mb 1 (205 L2 tables of
#            384), twice the operations (a phase without a burst is rare:
#            0.88^64), bursts of 512 scattered writes and no FUA: dirty L2
#            tables are written back to make room (checked: in phase 1,
#            more flush sequences than the fsyncs asked for, beyond the one
#            the first write's header update may run)
#   extl2    64 KiB clusters with extended L2 (subclusters of 2 KiB)
#   backing  64 KiB clusters over a qcow2 backing file that the workload
#            wrote first (partial writes copy from it)
# A recording: the workload from CRASH_THREADS writer threads (phase 1),
# an internal snapshot by qemu-img, the workload again (copy on write).

GEO_OPS=${CRASH_GEO_OPS:-32}

# cr_geometry NAME: the image and cache of one geometry
cr_geometry() {
	CRASH_CLUSTER=65536 CRASH_SIZE=48M CRASH_CACHE_MB='' CR_IMG_OPTS='' CR_BACKING=''
	CR_BURST=4 CR_FUA=10 GEO_K=1
	case $1 in
	c64k) ;;
	c4k) CRASH_CLUSTER=4096 ;;
	c512) CRASH_CLUSTER=512 GEO_K=5 ;;
	evict) CRASH_CLUSTER=4096 CRASH_SIZE=768M CRASH_CACHE_MB=1 CR_BURST=512 CR_FUA=0
		GEO_K=2 ;;
	extl2) CR_IMG_OPTS=,extended_l2=on ;;
	backing) CR_BACKING=1 ;;
	*) echo "unknown geometry $1"; return 1 ;;
	esac
}

# refcount_table_clusters of the image header (big-endian u32 at 56)
geo_rt_clusters() {
	od -An -tu1 -j56 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'
}

geo_flushes() {
	dmsetup status "$DQ" | sed -n 's/.* flushes \([0-9]*\).*/\1/p'
}

# geo_phase DEV SEED PHASE: one workload phase; evict must show flush
# sequences the workload did not ask for in phase 1 (fsyncs running at
# once share a sequence; no snapshot yet, so no copy-on-write frees pile
# up: only dirty tables written back to make room make more than one over)
geo_phase() {
	local before=0 fl0 fl req
	[ -f "$W/hist" ] && before=$(wc -l < "$W/hist")
	fl0=$(geo_flushes)
	cr_work "$1" "$2" "$((GEO_OPS * GEO_K))" || return 1
	fl=$(($(geo_flushes) - fl0))
	req=$(tail -n +"$((before + 1))" "$W/hist" | grep -c '^S \|^M [0-9]* U ')
	echo "phase $3: $(($(wc -l < "$W/hist") - before)) records, $req flush/FUA requests," \
	     "$fl flush sequences, $(dmsetup status "$DQ" |
		sed -n 's/.*\(cache_hits [0-9]* cache_misses [0-9]*\).*/\1/p')"
	if [ "$GEO" = evict ] && [ "$3" = 1 ] && [ "$fl" -le $((req + 1)) ]; then
		echo "no dirty L2 table was evicted ($fl flush sequences for $req requests)"
		return 1
	fi
}

geo_record() {
	local rt0 rt1
	cr_record_start || return 1
	rt0=$(geo_rt_clusters "$MNT/img.qcow2")
	cr_record_phases geo_phase || return 1
	rt1=$(geo_rt_clusters "$MNT/img.qcow2")
	echo "refcount table: $rt0 -> $rt1 clusters; image file $(stat -c %s "$MNT/img.qcow2") bytes"
	if [ "$GEO" = c512 ] && [ "$rt1" -le "$rt0" ]; then
		echo "the refcount table did not grow"
		return 1
	fi
	cr_record_finish
}

