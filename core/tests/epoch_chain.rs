//! How epoch records follow each other and close the epoch before them (PROTOCOL §7.9): the
//! rules a relay colluding with a removed member would have to break.

mod common;

use common::team::{T0, Team as World};
use sotto_core::conversation::epoch::{
    Admission, EpochAuthor, EpochRecord, MAX_CLOSES, MAX_VISITOR_DEVICES, SenderClose,
    admit_message, epoch_expired, sender_key,
};
use sotto_core::conversation::{ConversationId, Instance, MessageKind};
use sotto_core::device::{Device, DeviceId, DeviceKind};
use sotto_core::team::attestation::MAX_CLOCK_SKEW_SECS;
use sotto_core::team::{Change, Policy, Role, TeamState};
use sotto_core::wire::WireObject;
use sotto_core::{DecodeError, EpochError, Error, MessageError};

const CHECKED_AT: u64 = T0 + 3600;

fn visitor(w: &mut World) -> Device {
    Device::generate(DeviceKind::Visitor, &mut w.rng, T0)
}

fn open(
    w: &mut World,
    author: &Device,
    team: &TeamState,
    conversation: ConversationId,
    epoch: u32,
    after: Option<(&EpochRecord, Option<Vec<SenderClose>>)>,
    visitors: &[&Device],
) -> EpochRecord {
    EpochRecord::open(
        &mut w.rng,
        author,
        team,
        conversation,
        epoch,
        after,
        visitors.iter().map(|v| v.record()).collect(),
        T0,
    )
    .unwrap()
    .0
}

/// A record re-encoded after a change: what a relay (or a malicious author) could serve.
fn altered(record: &EpochRecord, change: impl FnOnce(&mut EpochRecord)) -> EpochRecord {
    let mut r = record.clone();
    change(&mut r);
    EpochRecord::from_wire(&r.to_wire()).unwrap()
}

fn close(sender: DeviceId, instance: u8, next: u32) -> SenderClose {
    SenderClose {
        sender,
        instance: Instance([instance; 8]),
        next,
    }
}

#[test]
fn a_record_follows_only_the_record_it_names_at_a_later_epoch_and_head() {
    let mut w = World::new(41, Policy::default());
    let v = visitor(&mut w);
    let early = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let first = open(&mut w, &v, &early, c, 0, None, &[&v]);
    let second = open(
        &mut w,
        &v,
        &early,
        c,
        1,
        Some((&first, Some(Vec::new()))),
        &[&v],
    );
    second.follows(&first).unwrap();
    assert_eq!(second.previous, first.hash());

    // Another record of the same conversation is not the one it names.
    let other_first = open(&mut w, &v, &early, c, 0, None, &[&v]);
    assert_eq!(
        second.follows(&other_first).unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
    // A record does not follow a later one, nor one of another conversation.
    assert_eq!(
        first.follows(&second).unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
    let other_conversation = ConversationId::random(&mut w.rng);
    let elsewhere = open(
        &mut w,
        &v,
        &early,
        other_conversation,
        1,
        Some((&first, None)),
        &[&v],
    );
    assert_eq!(
        elsewhere.follows(&first).unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
    // The same epoch number again does not follow.
    let same_number = altered(&second, |r| r.epoch = 0);
    assert_eq!(
        same_number.follows(&first).unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
    // Its author verified the record it follows, so it names a head at least as new.
    w.owner_does(Change::RotateKey);
    let later = w.verified();
    let on_new_head = open(&mut w, &v, &later, c, 1, Some((&first, None)), &[&v]);
    let on_old_head = open(&mut w, &v, &early, c, 2, Some((&on_new_head, None)), &[&v]);
    on_new_head.follows(&first).unwrap();
    assert_eq!(
        on_old_head.follows(&on_new_head).unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
    // Opening refuses an epoch number that does not come after its predecessor, and a
    // predecessor for epoch 0 or none for a later epoch.
    for (epoch, after) in [(1, false), (0, true)] {
        let r = EpochRecord::open(
            &mut w.rng,
            &v,
            &early,
            c,
            epoch,
            after.then_some((&second, None)),
            vec![v.record()],
            T0,
        );
        assert_eq!(r.unwrap_err(), Error::Epoch(EpochError::Predecessor));
    }
}

#[test]
fn only_the_first_record_has_no_predecessor() {
    let mut w = World::new(42, Policy::default());
    let v = visitor(&mut w);
    let team = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let first = open(&mut w, &v, &team, c, 0, None, &[&v]);
    let second = open(&mut w, &v, &team, c, 1, Some((&first, None)), &[&v]);
    let known = Some(first.visitor_devices.as_slice());
    first.verify(&w.state, None, CHECKED_AT).unwrap();
    second.verify(&w.state, known, CHECKED_AT).unwrap();
    let refused = [
        (second.clone(), None),
        (first.clone(), known),
        (altered(&first, |r| r.previous = [1; 32]), None),
        (altered(&first, |r| r.epoch = 1), None),
        (altered(&first, |r| r.closes = Some(Vec::new())), None),
    ];
    for (record, known) in refused {
        assert_eq!(
            record.verify(&w.state, known, CHECKED_AT).unwrap_err(),
            Error::Epoch(EpochError::Predecessor)
        );
    }
}

#[test]
fn a_record_from_beyond_the_clock_skew_is_refused() {
    let mut w = World::new(43, Policy::default());
    let v = visitor(&mut w);
    let team = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let record = open(&mut w, &v, &team, c, 0, None, &[&v]);
    record
        .verify(&w.state, None, T0 - MAX_CLOCK_SKEW_SECS)
        .unwrap();
    assert_eq!(
        record
            .verify(&w.state, None, T0 - MAX_CLOCK_SKEW_SECS - 1)
            .unwrap_err(),
        Error::Epoch(EpochError::FromFuture)
    );
}

#[test]
fn closes_are_sorted_without_repeats_and_bounded() {
    let mut w = World::new(44, Policy::default());
    let v = visitor(&mut w);
    let team = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let first = open(&mut w, &v, &team, c, 0, None, &[&v]);
    let (a, b) = (DeviceId([1; 32]), DeviceId([2; 32]));
    // Opening sorts the closes and keeps one per chain, the furthest.
    let unsorted = vec![
        close(b, 0, 3),
        close(a, 1, 2),
        close(a, 0, 1),
        close(a, 0, 7),
    ];
    let second = open(
        &mut w,
        &v,
        &team,
        c,
        1,
        Some((&first, Some(unsorted))),
        &[&v],
    );
    assert_eq!(
        second.closes,
        Some(vec![close(a, 0, 7), close(a, 1, 2), close(b, 0, 3)])
    );
    let known = Some(first.visitor_devices.as_slice());
    second.verify(&w.state, known, CHECKED_AT).unwrap();
    assert_eq!(second.closed_at(&a, &Instance([0; 8])), Some(7));
    assert_eq!(second.closed_at(&a, &Instance([1; 8])), Some(2));
    assert_eq!(second.closed_at(&b, &Instance([0; 8])), Some(3));
    assert_eq!(second.closed_at(&b, &Instance([1; 8])), Some(0));
    assert_eq!(first.closed_at(&a, &Instance([0; 8])), None);

    // A served record with closes out of order or repeated is refused before its signature.
    for closes in [
        vec![close(b, 0, 3), close(a, 0, 1)],
        vec![close(a, 0, 1), close(a, 0, 1)],
    ] {
        let bad = altered(&second, |r| r.closes = Some(closes));
        assert_eq!(
            bad.verify(&w.state, known, CHECKED_AT).unwrap_err(),
            Error::Epoch(EpochError::Predecessor)
        );
    }
    // More closes than a record may hold do not decode, and are not opened.
    let many: Vec<SenderClose> = (0..=MAX_CLOSES as u32)
        .map(|i| {
            let mut id = [0; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            close(DeviceId(id), 0, 1)
        })
        .collect();
    let mut too_many = second.clone();
    too_many.closes = Some(many.clone());
    assert_eq!(
        EpochRecord::from_wire(&too_many.to_wire()).unwrap_err(),
        Error::Decode(DecodeError::LengthLimit)
    );
    assert_eq!(
        EpochRecord::open(
            &mut w.rng,
            &v,
            &team,
            c,
            1,
            Some((&first, Some(many))),
            vec![v.record()],
            T0,
        )
        .unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
}

#[test]
fn the_author_is_a_visitor_a_member_or_a_member_removed_since() {
    let mut w = World::new(45, Policy::default());
    let agent = w.add(Role::Agent);
    let billing = w.add(Role::Billing);
    let v = visitor(&mut w);
    let before = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let first = open(&mut w, &v, &before, c, 0, None, &[&v]);
    let known = Some(first.visitor_devices.as_slice());
    let by_agent = open(
        &mut w,
        &agent.device,
        &before,
        c,
        1,
        Some((&first, None)),
        &[&v],
    );
    assert_eq!(
        first.verify(&w.state, None, CHECKED_AT).unwrap().author,
        EpochAuthor::Visitor
    );
    assert_eq!(
        by_agent.verify(&w.state, known, CHECKED_AT).unwrap().author,
        EpochAuthor::Member
    );
    // A role that reads no conversation opens no epoch, now or once removed.
    let by_billing = open(
        &mut w,
        &billing.device,
        &before,
        c,
        1,
        Some((&first, None)),
        &[&v],
    );
    assert_eq!(
        by_billing.verify(&w.state, known, CHECKED_AT).unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );

    w.owner_does(Change::RemoveMember {
        member: agent.member,
    });
    w.owner_does(Change::RemoveMember {
        member: billing.member,
    });
    // Removed since: its record naming a head from before is the removed member's word only.
    assert_eq!(
        by_agent.verify(&w.state, known, CHECKED_AT).unwrap().author,
        EpochAuthor::Former
    );
    assert_eq!(
        by_billing.verify(&w.state, known, CHECKED_AT).unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );
    // Naming the head of its removal or later, it is nobody.
    let after = w.verified();
    let late = open(
        &mut w,
        &agent.device,
        &after,
        c,
        1,
        Some((&first, None)),
        &[&v],
    );
    assert_eq!(
        late.verify(&w.state, known, CHECKED_AT).unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );
}

#[test]
fn a_message_counts_where_the_close_of_its_epoch_says() {
    let mut w = World::new(46, Policy::default());
    let v = visitor(&mut w);
    let team = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let first = open(&mut w, &v, &team, c, 0, None, &[&v]);
    let (a, b) = (DeviceId([1; 32]), DeviceId([2; 32]));
    let closed = open(
        &mut w,
        &v,
        &team,
        c,
        1,
        Some((&first, Some(vec![close(a, 0, 2)]))),
        &[&v],
    );
    let unstated = open(&mut w, &v, &team, c, 1, Some((&first, None)), &[&v]);
    let i = Instance([0; 8]);
    let cases = [
        // An open epoch: a sender active now counts, a removed one waits for the close.
        (None, &a, 5, false, Admission::Accept),
        (None, &a, 5, true, Admission::Hold),
        // A closed epoch: below the stated end counts, from it on is after the close...
        (Some(&closed), &a, 1, false, Admission::Accept),
        (Some(&closed), &a, 1, true, Admission::Accept),
        (Some(&closed), &a, 2, false, Admission::AfterClose),
        (Some(&closed), &a, 2, true, Admission::AfterClose),
        // ...and a chain the close does not list ended before its first message.
        (Some(&closed), &b, 0, false, Admission::AfterClose),
        // An end not stated (the next author could not read the epoch): only the active.
        (Some(&unstated), &a, 9, false, Admission::Accept),
        (Some(&unstated), &a, 0, true, Admission::AfterClose),
    ];
    for (closing, sender, counter, former, expected) in cases {
        assert_eq!(
            admit_message(closing, sender, &i, counter, former),
            expected,
            "{sender:?} {counter} former={former}"
        );
    }
    // An unlisted installation of the closing author's own device has no stated end: a
    // restored installation does not know how far its predecessor got.
    assert_eq!(closed.closed_at(&v.id(), &Instance([7; 8])), None);
    assert_eq!(
        admit_message(Some(&closed), &v.id(), &Instance([7; 8]), 3, false),
        Admission::Accept
    );
    assert_eq!(
        admit_message(Some(&closed), &v.id(), &Instance([7; 8]), 3, true),
        Admission::AfterClose
    );
    // Another installation of the same device has its own end.
    assert_eq!(
        admit_message(Some(&closed), &a, &Instance([1; 8]), 0, false),
        Admission::AfterClose
    );
}

#[test]
fn opening_bounds_the_visitor_devices_the_epoch_number_and_the_closes() {
    let mut w = World::new(47, Policy::default());
    let team = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let visitors: Vec<Device> = (0..=MAX_VISITOR_DEVICES).map(|_| visitor(&mut w)).collect();
    let v = &visitors[0];
    let opened = |w: &mut World, count: usize| {
        EpochRecord::open(
            &mut w.rng,
            v,
            &team,
            c,
            0,
            None,
            visitors.iter().take(count).map(|d| d.record()).collect(),
            T0,
        )
        .map(|_| ())
    };
    for count in [0, MAX_VISITOR_DEVICES + 1] {
        assert_eq!(
            opened(&mut w, count).unwrap_err(),
            Error::Epoch(EpochError::VisitorSet)
        );
    }
    opened(&mut w, MAX_VISITOR_DEVICES).unwrap();

    let first = open(&mut w, v, &team, c, 0, None, &[v]);
    let second = open(&mut w, v, &team, c, 1, Some((&first, None)), &[v]);
    // The same number as the predecessor's is no later epoch; a number further on is fine
    // (records the relay served in between were refused).
    assert_eq!(
        EpochRecord::open(
            &mut w.rng,
            v,
            &team,
            c,
            1,
            Some((&second, None)),
            vec![v.record()],
            T0
        )
        .unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
    let far = open(&mut w, v, &team, c, 9, Some((&second, None)), &[v]);
    far.follows(&second).unwrap();

    // Exactly the most closes a record holds: opened, verified, and read back.
    let most: Vec<SenderClose> = (0..MAX_CLOSES as u32)
        .map(|i| {
            let mut id = [0; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            close(DeviceId(id), 0, i)
        })
        .collect();
    let full = open(
        &mut w,
        v,
        &team,
        c,
        1,
        Some((&first, Some(most.clone()))),
        &[v],
    );
    let read = EpochRecord::from_wire(&full.to_wire()).unwrap();
    assert_eq!(read.closes.as_deref(), Some(most.as_slice()));
    read.verify(&w.state, Some(&first.visitor_devices), CHECKED_AT)
        .unwrap();
    // One more, built in memory past the decoder, is refused by verification.
    let mut over = full.clone();
    over.closes
        .as_mut()
        .unwrap()
        .push(close(DeviceId([0xff; 32]), 0, 1));
    assert_eq!(
        over.verify(&w.state, Some(&first.visitor_devices), CHECKED_AT)
            .unwrap_err(),
        Error::Epoch(EpochError::Predecessor)
    );
}

#[test]
fn served_records_with_a_wrong_generation_or_visitor_set_are_refused_before_their_signature() {
    let mut w = World::new(48, Policy::default());
    let agent = w.add(Role::Agent);
    let v = visitor(&mut w);
    let other = visitor(&mut w);
    w.owner_does(Change::RotateKey);
    let team = w.verified();
    let c = ConversationId::random(&mut w.rng);
    let first = open(&mut w, &v, &team, c, 0, None, &[&v]);
    let state = w.state.clone();
    let check = |r: &EpochRecord| r.verify(&state, None, CHECKED_AT).unwrap_err();
    assert_eq!(
        check(&altered(&first, |r| r.generation += 1)),
        Error::Epoch(EpochError::ChainBehind)
    );
    assert_eq!(
        check(&altered(&first, |r| r.generation -= 1)),
        Error::Epoch(EpochError::StaleGeneration)
    );
    let bad_sets = [
        altered(&first, |r| {
            r.visitor_devices.clear();
            r.visitor_sealed.clear();
        }),
        altered(&first, |r| r.visitor_sealed.clear()),
        altered(&first, |r| {
            r.visitor_devices.push(other.record());
        }),
        altered(&first, |r| {
            r.visitor_devices.push(agent.device.record());
            r.visitor_sealed.push(r.visitor_sealed[0].clone());
        }),
        altered(&first, |r| {
            r.visitor_devices.push(v.record());
            r.visitor_sealed.push(r.visitor_sealed[0].clone());
        }),
    ];
    for bad in &bad_sets {
        assert_eq!(check(bad), Error::Epoch(EpochError::VisitorSet));
    }
    // The first record is the visitor's own: a member does not open a conversation.
    let by_agent = open(&mut w, &agent.device, &team, c, 0, None, &[&v]);
    assert_eq!(check(&by_agent), Error::Epoch(EpochError::VisitorSet));
}

#[test]
fn the_link_that_removes_a_member_is_already_after_it() {
    let mut w = World::new(49, Policy::default());
    let agent = w.add(Role::Agent);
    let v = visitor(&mut w);
    let c = ConversationId::random(&mut w.rng);
    let before = w.verified();
    let first = open(&mut w, &v, &before, c, 0, None, &[&v]);
    w.owner_does(Change::RemoveMember {
        member: agent.member,
    });
    // Named head: the removal link itself. The agent was gone there: nobody, as author or sender.
    let at_removal = w.verified();
    let record = open(
        &mut w,
        &agent.device,
        &at_removal,
        c,
        1,
        Some((&first, None)),
        &[&v],
    );
    assert_eq!(
        record
            .verify(&w.state, Some(&first.visitor_devices), CHECKED_AT)
            .unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );
    let by_visitor = open(&mut w, &v, &at_removal, c, 1, Some((&first, None)), &[&v]);
    assert_eq!(
        sender_key(&w.state, &by_visitor, &agent.device.id(), MessageKind::Text).unwrap_err(),
        Error::Message(MessageError::UnknownSender)
    );
}

#[test]
fn an_epoch_gives_way_at_its_message_or_age_limit() {
    let policy = Policy {
        epoch_max_messages: 10,
        epoch_max_age_secs: 100,
        ..Policy::default()
    };
    let cases = [
        (9, T0 + 99, false),
        (10, T0, true),
        (11, T0, true),
        (0, T0 + 100, true),
        (0, T0 + 101, true),
        // A clock behind the epoch's start is no age.
        (0, T0 - 50, false),
    ];
    for (messages, now, expired) in cases {
        assert_eq!(
            epoch_expired(&policy, T0, messages, now),
            expired,
            "{messages} messages at {now}"
        );
    }
}
