// Command sarama-compat drives Sluice with Sarama 1.22 (Debian's golang-github-shopify-sarama-dev),
// a client of the era that sends JoinGroup v1 (and, by hand, v0): compat-tests/test_sarama.py
// runs its subcommands and reads what they print, one event a line.
//
// Sarama 1.22 does not negotiate versions from ApiVersions: config.Version picks them. At
// V2_1_0_0 it sends Produce v3, Fetch v4, Metadata v5, ListOffsets v1, FindCoordinator v0,
// JoinGroup v1 (v1 from V0_10_1_0 on; a consumer group needs V0_10_2_0), SyncGroup v0,
// Heartbeat v0, LeaveGroup v0, OffsetFetch v1 and OffsetCommit v1, or v2 when
// Consumer.Offsets.Retention is set. Kafka 4 serves OffsetCommit from v2 only (KIP-896), so a
// member here sets a retention, as Sarama users on Kafka 4 must.
//
//	produce BOOTSTRAP TOPIC FIRST N       N records valued v-FIRST.. keyed by their number
//	member BOOTSTRAP GROUP TOPIC          one consumer group member until stdin closes
//	join-v0 BOOTSTRAP GROUP TOPIC         one member driven by hand with JoinGroup v0
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

var outMu sync.Mutex

// say prints one event line; lines from concurrent claims never interleave.
func say(format string, args ...interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "sarama-compat: "+format+"\n", args...)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = "sarama-compat"
	return c
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: produce|member|join-v0 ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "produce":
		if len(args) != 4 {
			fail("usage: produce BOOTSTRAP TOPIC FIRST N")
		}
		first, err1 := strconv.Atoi(args[2])
		n, err2 := strconv.Atoi(args[3])
		if err1 != nil || err2 != nil {
			fail("FIRST and N are numbers")
		}
		produce(args[0], args[1], first, n)
	case "member":
		if len(args) != 3 {
			fail("usage: member BOOTSTRAP GROUP TOPIC")
		}
		member(args[0], args[1], args[2])
	case "join-v0":
		if len(args) != 3 {
			fail("usage: join-v0 BOOTSTRAP GROUP TOPIC")
		}
		joinV0(args[0], args[1], args[2])
	default:
		fail("unknown subcommand %q", os.Args[1])
	}
}

func produce(bootstrap, topic string, first, n int) {
	c := config()
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Retry.Max = 10
	p, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		fail("producer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := first; i < first+n; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.StringEncoder(fmt.Sprintf("k-%d", i)),
			Value:   sarama.StringEncoder(fmt.Sprintf("v-%d", i)),
			Headers: []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))}},
		})
	}
	if err := p.SendMessages(msgs); err != nil {
		fail("send: %v", err)
	}
	perPartition := map[int32]int{}
	for _, m := range msgs {
		perPartition[m.Partition]++
	}
	if err := p.Close(); err != nil {
		fail("producer close: %v", err)
	}
	say("produced %d over %d partitions", n, len(perPartition))
}

// handler prints every record it is given and marks it consumed right after, so that a record
// printed is a record committed by the session's final commit.
type handler struct{}

func (handler) Setup(s sarama.ConsumerGroupSession) error {
	var parts []string
	for topic, ps := range s.Claims() {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			parts = append(parts, fmt.Sprintf("%s/%d", topic, p))
		}
	}
	say("assigned generation=%d member=%s partitions=%s", s.GenerationID(), s.MemberID(), strings.Join(parts, ","))
	return nil
}

func (handler) Cleanup(s sarama.ConsumerGroupSession) error {
	say("released generation=%d", s.GenerationID())
	return nil
}

func (handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		seq := ""
		for _, h := range m.Headers {
			if string(h.Key) == "seq" {
				seq = string(h.Value)
			}
		}
		say("record %d %d %s %s %s", m.Partition, m.Offset, m.Key, m.Value, seq)
		s.MarkMessage(m, "")
	}
	return nil
}

func member(bootstrap, group, topic string) {
	c := config()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	// OffsetCommit v2 (a retention time) instead of v1, which Kafka 4 no longer serves.
	c.Consumer.Offsets.Retention = 24 * time.Hour
	c.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	// JoinGroup v1's rebalance_timeout_ms: how long the coordinator waits for members to rejoin.
	c.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	c.Consumer.Return.Errors = true
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, group, c)
	if err != nil {
		fail("consumer group: %v", err)
	}
	go func() {
		for err := range cg.Errors() {
			say("error %v", err)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Consume returns at every rebalance; calling it again joins the next generation.
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, handler{}); err != nil {
				say("error consume: %v", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	say("started")
	// The test closes stdin to make this member leave the group.
	buf := make([]byte, 64)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			break
		}
	}
	cancel()
	<-done
	// Close sends LeaveGroup, so the others rebalance at once rather than after a session timeout.
	if err := cg.Close(); err != nil {
		fail("close: %v", err)
	}
	say("left")
}

// joinV0 drives a group by hand through Sarama's Broker calls with JoinGroup v0, which no
// consumer group of Sarama's sends (those need V0_10_2_0 and so send v1): one member's whole
// generation, then a second member whose join waits out the first one's rebalance timeout (v0
// has none: the coordinator uses the session timeout, as Kafka's JoinGroupRequest does).
func joinV0(bootstrap, group, topic string) {
	client, err := sarama.NewClient([]string{bootstrap}, config())
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	partitions, err := client.Partitions(topic)
	if err != nil {
		fail("partitions: %v", err)
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		fail("coordinator: %v", err)
	}
	join := &sarama.JoinGroupRequest{
		Version:        0,
		GroupId:        group,
		SessionTimeout: 6000,
		ProtocolType:   "consumer",
	}
	if err := join.AddGroupProtocolMetadata("range", &sarama.ConsumerGroupMemberMetadata{Topics: []string{topic}}); err != nil {
		fail("metadata: %v", err)
	}
	jr, err := coord.JoinGroup(join)
	if err != nil {
		fail("join v0: %v", err)
	}
	if jr.Err != sarama.ErrNoError {
		fail("join v0 answered %v", jr.Err)
	}
	members, err := jr.GetMembers()
	if err != nil {
		fail("join v0 members: %v", err)
	}
	if jr.LeaderId != jr.MemberId || len(members) != 1 || jr.GroupProtocol != "range" {
		fail("join v0: leader %q member %q protocol %q members %v", jr.LeaderId, jr.MemberId, jr.GroupProtocol, members)
	}
	if got := members[jr.MemberId].Topics; len(got) != 1 || got[0] != topic {
		fail("join v0: the leader sees subscription %v", got)
	}
	say("joined v0 generation=%d member=%s", jr.GenerationId, jr.MemberId)

	sync := &sarama.SyncGroupRequest{GroupId: group, GenerationId: jr.GenerationId, MemberId: jr.MemberId}
	if err := sync.AddGroupAssignmentMember(jr.MemberId, &sarama.ConsumerGroupMemberAssignment{
		Topics: map[string][]int32{topic: partitions},
	}); err != nil {
		fail("assignment: %v", err)
	}
	sr, err := coord.SyncGroup(sync)
	if err != nil || sr.Err != sarama.ErrNoError {
		fail("sync v0: %v %v", err, sr)
	}
	assignment, err := sr.GetMemberAssignment()
	if err != nil || len(assignment.Topics[topic]) != len(partitions) {
		fail("sync v0 assignment: %v %v", err, assignment)
	}
	say("synced %d partitions", len(assignment.Topics[topic]))

	hb, err := coord.Heartbeat(&sarama.HeartbeatRequest{GroupId: group, GenerationId: jr.GenerationId, MemberId: jr.MemberId})
	if err != nil || hb.Err != sarama.ErrNoError {
		fail("heartbeat v0: %v %v", err, hb)
	}

	commit := &sarama.OffsetCommitRequest{
		Version:                 2,
		ConsumerGroup:           group,
		ConsumerGroupGeneration: jr.GenerationId,
		ConsumerID:              jr.MemberId,
		RetentionTime:           -1,
	}
	for _, p := range partitions {
		commit.AddBlock(topic, p, int64(100+p), 0, "v0")
	}
	cr, err := coord.CommitOffset(commit)
	if err != nil {
		fail("commit: %v", err)
	}
	for _, errs := range cr.Errors {
		for p, e := range errs {
			if e != sarama.ErrNoError {
				fail("commit partition %d: %v", p, e)
			}
		}
	}
	fetch := &sarama.OffsetFetchRequest{Version: 1, ConsumerGroup: group}
	for _, p := range partitions {
		fetch.AddPartition(topic, p)
	}
	fr, err := coord.FetchOffset(fetch)
	if err != nil {
		fail("offset fetch: %v", err)
	}
	for _, p := range partitions {
		b := fr.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != int64(100+p) || b.Metadata != "v0" {
			fail("offset fetch partition %d: %+v", p, b)
		}
	}
	say("committed and fetched %d offsets", len(partitions))

	dr, err := coord.DescribeGroups(&sarama.DescribeGroupsRequest{Groups: []string{group}})
	if err != nil || len(dr.Groups) != 1 {
		fail("describe: %v %v", err, dr)
	}
	g := dr.Groups[0]
	say("described %s protocol=%s members=%d", g.State, g.Protocol, len(g.Members))

	// A second v0 member joins while the first keeps heartbeating (which keeps its session
	// alive) but never rejoins: the coordinator must wait the first member's rebalance timeout,
	// which for v0 is its session timeout, then complete the join without it.
	hbs := make(chan sarama.KError, 64)
	go func() {
		defer close(hbs)
		for i := 0; i < 60; i++ {
			r, err := coord.Heartbeat(&sarama.HeartbeatRequest{GroupId: group, GenerationId: jr.GenerationId, MemberId: jr.MemberId})
			if err != nil {
				fail("heartbeat v0 during the rebalance: %v", err)
			}
			hbs <- r.Err
			if r.Err != sarama.ErrNoError && r.Err != sarama.ErrRebalanceInProgress {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	second := sarama.NewBroker(coord.Addr())
	if err := second.Open(config()); err != nil {
		fail("second connection: %v", err)
	}
	defer second.Close()
	join2 := &sarama.JoinGroupRequest{Version: 0, GroupId: group, SessionTimeout: 6000, ProtocolType: "consumer"}
	if err := join2.AddGroupProtocolMetadata("range", &sarama.ConsumerGroupMemberMetadata{Topics: []string{topic}}); err != nil {
		fail("metadata: %v", err)
	}
	started := time.Now()
	jr2, err := second.JoinGroup(join2)
	if err != nil || jr2.Err != sarama.ErrNoError {
		fail("second join v0: %v %v", err, jr2)
	}
	took := time.Since(started)
	members2, err := jr2.GetMembers()
	if err != nil || jr2.LeaderId != jr2.MemberId || len(members2) != 1 {
		fail("second join v0: leader %q member %q members %v (%v)", jr2.LeaderId, jr2.MemberId, members2, err)
	}
	say("second member joined v0 generation=%d members=%d after %.1fs", jr2.GenerationId, len(members2), took.Seconds())
	// Kafka's error codes, each run of equal answers once.
	var seen []string
	for e := range hbs {
		code := strconv.Itoa(int(e))
		if len(seen) == 0 || seen[len(seen)-1] != code {
			seen = append(seen, code)
		}
	}
	say("first member's heartbeats: %s", strings.Join(seen, ","))

	sync2 := &sarama.SyncGroupRequest{GroupId: group, GenerationId: jr2.GenerationId, MemberId: jr2.MemberId}
	if err := sync2.AddGroupAssignmentMember(jr2.MemberId, &sarama.ConsumerGroupMemberAssignment{
		Topics: map[string][]int32{topic: partitions},
	}); err != nil {
		fail("assignment: %v", err)
	}
	if sr2, err := second.SyncGroup(sync2); err != nil || sr2.Err != sarama.ErrNoError {
		fail("second sync v0: %v %v", err, sr2)
	}
	lr, err := second.LeaveGroup(&sarama.LeaveGroupRequest{GroupId: group, MemberId: jr2.MemberId})
	if err != nil || lr.Err != sarama.ErrNoError {
		fail("leave v0: %v %v", err, lr)
	}
	say("left")
}
